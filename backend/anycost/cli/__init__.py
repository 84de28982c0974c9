"""`anycost-backend`: the command line of Anycost Editor's backend."""
from __future__ import annotations

import argparse
import sys

from anycost.cli import (
    bench,
    convert_creps,
    demo,
    diagnose,
    edit,
    grid,
    import_model,
    install_plugin,
    install_service,
    keys,
    models,
    project,
    sample,
    serve,
    status,
)
from anycost.cli.options import OneLineErrorParser
from anycost.core.errors import AnycostError

# each module: NAME, HELP, add_arguments(p), run(args)
COMMANDS = [demo, serve, status, project, edit, sample, grid, models, import_model, bench, convert_creps,
            install_service, install_plugin, keys, diagnose]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="anycost-backend", description=__doc__)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's choice); the editor shares the CPU")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineErrorParser)
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.NAME, help=cmd.HELP, description=cmd.HELP)
        cmd.add_arguments(p)
        p.set_defaults(run=cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.threads is not None:
            if args.threads < 1:
                raise AnycostError(f"--threads must be at least 1, got {args.threads}")
            import torch
            torch.set_num_threads(args.threads)
        return args.run(args) or 0
    except (AnycostError, ValueError) as e:   # our ValueErrors are validation messages for the user
        sys.stderr.write(f"anycost-backend: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("anycost-backend: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
