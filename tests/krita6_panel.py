"""Run by test_krita_plugin.py in a fresh Python where PyQt5 cannot be imported (as in Krita 6,
which ships PyQt6 only): builds the docker's panel through anycost_krita.qt on PyQt6, offscreen,
and drives it against the daemon at argv[1]: connect, Project, a slider, reset one, Original,
Apply twice, Discard. Prints one JSON line of what it saw."""
import json
import os
import sys
import time

sys.modules["PyQt5"] = None                                  # type: ignore[assignment]  # as in Krita 6
os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "plugin_krita"))

from PyQt6.QtWidgets import QApplication  # noqa: E402

from anycost_krita import qt  # noqa: E402
from anycost_krita.panel import AnycostPanel  # noqa: E402
from anycost_plugin.controller import EDITING  # noqa: E402
from anycost_plugin.settings import MemoryStore  # noqa: E402
from tests.daemon_helpers import face_image  # noqa: E402
from tests.plugin_fakes import MemoryHost  # noqa: E402

app = QApplication([])


def pump(until, what, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.005)


img = face_image(80, 72, "RGBA8")
host = MemoryHost(img["data"], 80, 72, (8, 4, 64, 60))
panel = AnycostPanel(MemoryStore({"address": sys.argv[1], "autostart": "false", "steps": "3"}), lambda: host,
                     log_dir=sys.argv[2])
out = {"qt_major": qt.QT_MAJOR, "pyqt5_loaded": "PyQt5.QtCore" in sys.modules}
pump(lambda: panel.connection.connected, "the connection")
out["status"] = panel.status.text()
panel.project_button.click()
pump(lambda: panel.controller.phase == EDITING, "the projection")
name, (slider, label, spec) = next(iter(panel.sliders.items()))
shown = []
panel.controller.preview_shown.connect(shown.append)
slider.setValue(slider.maximum())
pump(lambda: shown and abs(shown[-1]["values"][name] - spec.hi) < 1e-6, "the preview")
out["label"], out["slider_label"] = label.text(), spec.label
panel.compare_button.click()
out["preview_while_original"] = host.preview is not None
panel.compare_button.click()
out["preview_back"] = host.preview is not None
panel.apply_button.click()
pump(lambda: panel.controller.applied == 1 and panel.controller.phase == EDITING, "Apply")
slider.setValue(0)
pump(lambda: host.preview is not None, "a preview after Apply")
panel.apply_button.click()
pump(lambda: panel.controller.applied == 2 and panel.controller.phase == EDITING, "the second Apply")
out["applied"] = [a[4] for a in host.applied]
panel.discard_button.click()
out["session_after_discard"] = panel.controller.session
panel.shutdown()
print(json.dumps(out))
