"""anycost-backend install-plugin krita: put the editor plugin where the editor loads it."""
from __future__ import annotations

import argparse
from pathlib import Path

NAME = "install-plugin"
HELP = "install the Krita plugin (copy, enable, check that Krita's Python has pyzmq and msgpack)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("editor", choices=["krita"], help="which editor")
    p.add_argument("--pykrita-dir", type=Path, help="Krita's pykrita folder (default: the user's, per platform)")
    p.add_argument("--kritarc", type=Path, help="Krita's settings file (default: the user's, per platform)")
    p.add_argument("--krita-python", help="the Python executable Krita runs plugins with (distro Krita: "
                                          "/usr/bin/python3, found by itself)")
    p.add_argument("--krita-python-version", help="e.g. 3.10 (Krita 5.2) or 3.13 (Krita 5.3) for an official "
                                                  "build with its own Python: wheels of pyzmq/msgpack are unpacked for it")
    p.add_argument("--no-enable", action="store_true", help="do not touch kritarc")


def run(args) -> int:
    from ..plugin_install import install_krita
    report = install_krita(args.pykrita_dir, args.kritarc, args.krita_python, args.krita_python_version,
                           enable=not args.no_enable)
    for line in report.lines:
        print(line)
    return 0
