"""anycost-backend install-plugin krita: put the editor plugin where the editor loads it."""
from __future__ import annotations

import argparse
from pathlib import Path

NAME = "install-plugin"
HELP = ("install the Krita plugin or the GIMP 3 plug-in (copy, enable, check that the editor's Python has pyzmq "
        "and msgpack)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("editor", choices=["krita", "gimp"], help="which editor")
    p.add_argument("--pykrita-dir", type=Path, help="Krita's pykrita folder (default: the user's, per platform)")
    p.add_argument("--kritarc", type=Path, help="Krita's settings file (default: the user's, per platform)")
    p.add_argument("--krita-python", help="the Python executable Krita runs plugins with (distro Krita: "
                                          "/usr/bin/python3, found by itself)")
    p.add_argument("--krita-python-version", help="e.g. 3.10 (Krita 5.2) or 3.13 (Krita 5.3) for an official "
                                                  "build with its own Python: wheels of pyzmq/msgpack are unpacked "
                                                  "for it")
    p.add_argument("--no-enable", action="store_true", help="do not touch kritarc")
    p.add_argument("--plug-ins-dir", type=Path, help="GIMP 3's plug-ins folder (default: the user's, per platform; "
                                                     "Flatpak: ~/.var/app/org.gimp.GIMP/config/GIMP/3.0/plug-ins)")
    p.add_argument("--gimp-python", help="the Python executable GIMP runs plug-ins with (distro GIMP: "
                                         "/usr/bin/python3)")
    p.add_argument("--gimp-python-version", help="for a GIMP with its own Python: unpack pyzmq/msgpack wheels for it")


def run(args) -> int:
    from anycost.install.plugins import install_gimp, install_krita
    if args.editor == "gimp":
        report = install_gimp(args.plug_ins_dir, args.gimp_python, args.gimp_python_version)
    else:
        report = install_krita(args.pykrita_dir, args.kritarc, args.krita_python, args.krita_python_version,
                               enable=not args.no_enable)
    for line in report.lines:
        print(line)
    return 0
