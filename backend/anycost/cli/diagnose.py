"""anycost-backend diagnose: one zip to attach to a support request."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from anycost.protocol import messages as P

NAME = "diagnose"
HELP = ("write a zip for a support request: backend and plugin logs, versions, what the running backend says, "
        "the preview calibration and the plugins' settings (your home folder and login name redacted)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, help="the zip to write (default: ~/anycost-diagnostics-<time>.zip)")
    p.add_argument("--address", default=None, help=f"the backend to ask (default: {P.default_address()})")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the backend's answers")
    p.add_argument("--plugin-info", type=Path, help="a JSON file the editor's plugin adds (its versions, settings, "
                                                    "log); the plugins' Diagnostics button passes it")


def run(args) -> int:
    from anycost.core.errors import AnycostError
    from anycost.install.diagnostics import default_report_path, write_report
    info = None
    if args.plugin_info is not None:
        try:
            info = json.loads(args.plugin_info.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise AnycostError(f"cannot read the plugin's information {args.plugin_info}: {e}") from None
    out = args.out or default_report_path()
    names = write_report(out, args.address, info, args.timeout)
    print(f"wrote {out} ({len(names)} files: {', '.join(names)})")
    print("attach it to your report; it holds no images, and your home folder and login name are redacted")
    return 0
