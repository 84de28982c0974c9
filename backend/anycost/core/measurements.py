"""Measurements of this machine kept between runs (latencies, chosen conv forms, channel searches):
one JSON file each, in the state folder's `calibration/`, read back if it parses and written
atomically (a crash or a second daemon never leaves half a file for the next start to trust)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def read(path: Path | None) -> Any:
    """The saved value, or None when there is none or it is damaged (then it is measured again)."""
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write(path: Path | None, value: Any) -> None:
    """Save `value` as JSON at `path` (nothing when None), replacing any earlier file at once."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=1))
    tmp.replace(path)
