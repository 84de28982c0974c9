"""anycost-backend models: list local models, download official ones."""
from __future__ import annotations

import argparse

from .. import hub
from ..models import ARCHITECTURES

NAME = "models"
HELP = "list the models available locally, or pull an official one"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, parser_class=type(p))
    sub.add_parser("list", help="show official names (downloaded or not) and the model folder's files")
    pull = sub.add_parser("pull", help="download an official generator into the model folder")
    pull.add_argument("name", help=f"one of: {', '.join(hub.OFFICIAL_MODELS)}")
    pull.add_argument("--sha256", help="expected SHA-256 of the file (the release publishes none)")
    pull.add_argument("--force", action="store_true", help="download again even if present")
    pull.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    if args.action == "pull":
        path = hub.pull(args.name, sha256=args.sha256, force=args.force, progress=not args.quiet)
        print(f"{args.name}: {path}")
        return 0
    print(f"model folder: {hub.cache_dir()}")
    demo = "built in" if hub.BUILTIN_DEMO.is_file() else "not in this installation yet"
    print(f"  {hub.DEFAULT_MODEL:34s} {'':11s}  {demo}")
    for e in hub.list_models():
        size = f"{e.bytes / 1e6:8.1f} MB" if e.path else " " * 11
        print(f"  {e.name:34s} {size}  {e.note}")
    print(f"  {'random:ARCH[:SEED]':34s} {'':11s}  untrained networks; ARCH in {', '.join(ARCHITECTURES)}")
    return 0
