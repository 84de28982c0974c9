"""Running the Krita plugin's editor-independent parts in tests: a Qt core application and an event
pump (the in-memory Host and the scripted socket, which need no Qt, are in plugin_fakes)."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

PLUGIN_ROOT = Path(__file__).resolve().parents[1] / "plugin_krita"
if str(PLUGIN_ROOT) not in sys.path:
    sys.path.insert(0, str(PLUGIN_ROOT))

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")      # widgets without a display
from PyQt5.QtWidgets import QApplication  # noqa: E402

APP = QApplication.instance() or QApplication([])


def pump(until, timeout: float = 60.0, what: str = "condition") -> None:
    """Run the Qt event loop until `until()` is true; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        APP.processEvents()
        time.sleep(0.005)
