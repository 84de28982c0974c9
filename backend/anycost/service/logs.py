"""Logging of the daemon: stderr and a rotating file in the user's state folder."""
from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path


def setup_logging(folder: Path, verbose: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "backend.log"
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger("anycost")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.handlers.clear()
    for h in (logging.StreamHandler(), logging.handlers.RotatingFileHandler(path, maxBytes=10 << 20, backupCount=3)):
        h.setFormatter(fmt)
        root.addHandler(h)
    return path
