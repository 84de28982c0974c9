"""anycost-backend keys: make the CURVE key pairs a non-loopback daemon needs."""
from __future__ import annotations

import argparse

NAME = "keys"
HELP = "create CURVE keys (server pair, an authorised client pair) for binding beyond loopback"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="replace existing keys")


def run(args) -> int:
    from anycost.core.paths import keys_dir
    from anycost.service.keys import make_keys

    made = make_keys(keys_dir(), args.force)
    print(f"server keys: {made['server_public']} (public), {made['server_secret']} (secret)")
    print(f"client keys: {made['client_public']}, {made['client_secret']}; authorised in {made['authorized']}")
    print("give a remote client server.key and its own client pair; add more clients' public keys to "
          "the authorised folder")
    return 0
