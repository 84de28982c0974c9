"""anycost-backend status: does a daemon answer, and what does it serve?"""
from __future__ import annotations

import argparse
from typing import Any

from anycost.protocol import messages as P
from anycost.protocol.client import BackendTimeout, Client
from anycost.protocol.messages import BackendError

NAME = "status"
HELP = "tell whether a daemon answers on the address and what it serves (exit 1 if none)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", default=P.default_address(),
                   help="the daemon's address (default: ANYCOST_ADDRESS, else this user's private socket, "
                        f"{P.default_address()})")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for an answer")
    p.add_argument("--curve", action="store_true", help="connect with this machine's CURVE client keys")


def run(args) -> int:
    keys: dict[str, Any] = {}
    if args.curve:
        from anycost.core.paths import keys_dir
        from anycost.service.keys import load_client_keys
        server_key, pair = load_client_keys(keys_dir())
        keys = {"curve_server_key": server_key, "curve_keypair": pair}
    with Client(args.address, **keys) as c:
        try:
            hello = P.Hello.from_dict(c.call("hello", timeout=args.timeout))
            models = P.ModelsResult.from_dict(c.call("models", timeout=args.timeout)).models
        except BackendTimeout:
            print(f"no anycost-backend answers on {args.address}")
            return 1
        except BackendError as e:
            print(f"{args.address} answered with an error: {e}")
            return 1
    print(f"anycost-backend {hello.version} on {args.address}: {hello.state}, protocol {hello.protocol}, "
          f"{hello.device}, {hello.threads} thread(s), perceptual loss {hello.perceptual}")
    for m in models:
        dirs = ", ".join(d.name for d in m.directions)
        print(f"  model {m.name}: {m.resolution} px{' (untrained)' if m.untrained else ''}; directions: {dirs}")
    for w in hello.warnings:
        print(f"  warning: {w}")
    return 0
