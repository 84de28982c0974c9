"""Running the Krita plugin's editor-independent parts in tests: a Qt core application, an event
pump, and an in-memory Host (a canvas of bytes) standing in for a Krita document."""
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


class MemoryHost:
    """A document of one RGB layer held in memory; records what the controller does to it."""

    def __init__(self, rgba: bytes, w: int, h: int, region=None):
        self.rgba, self.w, self.h = rgba, w, h
        self.source_region = self.region = region or (0, 0, w, h)
        self.preview: bytes | None = None
        self.previews = 0
        self.applied: list[tuple] = []
        self.open = True
        self.broken = False           # e.g. the user deleted the layer under the preview


    def source(self):
        x, y, w, h = self.source_region
        rows = [self.rgba[((y + r) * self.w + x) * 4:((y + r) * self.w + x + w) * 4] for r in range(h)]
        return {"w": w, "h": h, "mode": "RGBA8", "data": b"".join(rows)}, self.source_region

    def show_preview(self, rgb, w, h):
        assert len(rgb) == w * h * 3 and (w, h) == self.region[2:]
        if self.broken:
            raise RuntimeError("the preview layer is gone")
        self.preview = rgb
        self.previews += 1

    def remove_preview(self):
        self.preview = None

    def apply(self, rgb, w, h, feather, name):
        self.preview = None
        self.applied.append((rgb, w, h, feather, name, self.region))

    def alive(self):
        return self.open
