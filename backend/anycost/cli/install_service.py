"""anycost-backend install-service: a systemd user unit that keeps the daemon running (Linux).

The unit runs `serve` with no address, so the daemon listens on this user's private socket in
$XDG_RUNTIME_DIR, which systemd gives user services and the desktop session alike: the plugins'
default endpoint. macOS and Windows have no systemd: docs/install.md says what to do there."""
from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

NAME = "install-service"
HELP = "write a systemd --user unit for the daemon and print how to enable it"
UNIT = "anycost-backend.service"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bind", help="as for `serve`; default: the daemon's own default, this user's private "
                                  "socket, which the editors' plugins also find by default")
    p.add_argument("--model", action="append", dest="models", help="as for `serve` (repeatable)")
    p.add_argument("--unit-dir", type=Path, help="default: $XDG_CONFIG_HOME/systemd/user")


def unit_text(exe: str, args: list[str]) -> str:
    cmd = " ".join(shlex.quote(a) for a in [exe, "serve", *args])
    return f"""[Unit]
Description=Anycost Editor backend (GAN editing daemon for Krita and GIMP)

[Service]
Type=simple
ExecStart={cmd}
Restart=on-failure
RestartSec=2
# the editor shares the CPU: the daemon defaults to all cores but one
Nice=5

[Install]
WantedBy=default.target
"""


def run(args) -> int:
    from anycost.core.errors import AnycostError
    from anycost.install.plugins import find_backend_program
    program = find_backend_program()
    if program is None:
        raise AnycostError("cannot find the anycost-backend program to put in the unit")
    exe = str(program)
    extra = ["--bind", args.bind] if args.bind else []
    for m in args.models or []:
        extra += ["--model", m]
    folder = args.unit_dir or Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "systemd" / "user"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / UNIT
    path.write_text(unit_text(exe, extra))
    print(f"wrote {path}")
    print(f"enable and start it with:\n  systemctl --user daemon-reload && systemctl --user enable --now {UNIT}")
    return 0
