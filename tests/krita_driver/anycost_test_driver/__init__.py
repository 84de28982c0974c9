"""Runs inside real Krita (GUI, under Xvfb) for tests/editors/test_krita_real.py: drives the installed
Anycost docker like a user (Project, drag a slider, Apply, Undo), records what the document looks
like after each step into $ANYCOST_TEST_OUT (JSON), then quits Krita."""
import json
import os
import sys
import time
import traceback

from krita import Extension, Krita, Selection
from PyQt5.QtCore import QTimer

ENV = os.environ


def shot(name):
    """With $ANYCOST_SCREENSHOTS set (a folder): the Krita window as the user sees it now."""
    folder = ENV.get("ANYCOST_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        Krita.instance().activeWindow().qwindow().grab().save(os.path.join(folder, f"krita-{name}.png"))


def layers(doc):
    return [n.name() for n in doc.rootNode().childNodes()]


def find(doc, prefix):
    return next((n for n in doc.rootNode().childNodes() if n.name().startswith(prefix)), None)


def connected_docker(result, states):
    """Waits for the Anycost docker to connect (its connection messages go to `states`); returns
    the docker and its panel."""
    docker = next((d for d in Krita.instance().dockers() if d.objectName() == "anycost"), None)
    result["docker_found"] = docker is not None
    panel = docker.panel
    panel.connection.state_changed.connect(lambda st, m: states.append(m))
    yield "the docker connected", lambda: panel.connection.connected
    result["status"] = panel.status.text()
    result["models"] = [panel.model_box.itemText(i) for i in range(panel.model_box.count())]
    return docker, panel


def first_run(result):
    """Krita started right after install-plugin, nothing typed: the docker starts the backend it
    recorded and connects."""
    states = []
    _, panel = yield from connected_docker(result, states)
    result["executable_setting"] = panel.settings.executable
    result["connection_messages"] = states
    result["done"] = True


def scenario(result):
    k = Krita.instance()
    w, h = int(ENV["ANYCOST_TEST_W"]), int(ENV["ANYCOST_TEST_H"])
    rx, ry, rw, rh = (int(v) for v in ENV["ANYCOST_TEST_REGION"].split(","))
    doc = k.createDocument(w, h, "anycost-test", "RGBA", "U8", "", 72.0)
    k.activeWindow().addView(doc)
    face = doc.createNode("Face", "paintlayer")
    doc.rootNode().addChildNode(face, None)
    with open(ENV["ANYCOST_TEST_FACE"], "rb") as f:       # BGRA, as Krita stores it
        face.setPixelData(f.read(), 0, 0, w, h)
    doc.setActiveNode(face)
    sel = Selection()
    sel.select(rx, ry, rw, rh, 255)
    doc.setSelection(sel)
    doc.waitForDone()
    yield "the face layer active", lambda: doc.activeNode() is not None and doc.activeNode().name() == "Face"
    source = bytes(face.pixelData(0, 0, w, h))
    result["layers_before"] = layers(doc)

    states = []
    docker, panel = yield from connected_docker(result, states)
    result["krita"] = [k.version(), "%d.%d" % sys.version_info[:2]]
    result["window_height"] = k.activeWindow().qwindow().frameGeometry().height()
    result["docker_min_height"] = docker.minimumSizeHint().height()
    result["feather_setting"] = panel.feather.value()
    if ENV.get("ANYCOST_SCREENSHOTS"):        # the pictures: the other dockers closed, as a user may
        for d in k.dockers():
            if d.objectName() != "anycost" and d.isVisible():
                d.hide()
    doc.waitForDone()
    until = time.monotonic() + 1.0
    yield "the layout", lambda: time.monotonic() > until
    shot("1-connected")
    panel.model_box.setCurrentIndex(panel.model_box.findText(ENV["ANYCOST_TEST_MODEL"]))   # as a user picks it
    result["model"] = panel.model_box.currentText()

    panel.project_button.click()
    yield "the projection", lambda: panel.controller.phase == "editing"
    preview = find(doc, "Anycost preview")
    result["preview_after_project"] = preview is not None and preview.locked()
    result["region"] = list(panel.controller.region)     # the selection, or an aligned face's surroundings
    reconstruction = bytes(preview.pixelData(rx, ry, rw, rh))
    result["slider_names"] = list(panel.sliders)
    name = next(iter(panel.sliders))
    slider, _, direction = panel.sliders[name]
    shown = []
    panel.controller.preview_shown.connect(shown.append)
    for pos in range(slider.value(), slider.maximum() + 1, 10):    # a drag, fast
        slider.setValue(pos)
    slider.setValue(slider.maximum())
    yield "the newest preview", lambda: shown and abs(shown[-1]["values"][name] - direction.hi) < 1e-6
    shot("2-editing")
    edited = bytes(find(doc, "Anycost preview").pixelData(rx, ry, rw, rh))
    result["preview_changed"] = edited != reconstruction
    result["edits_sent"] = panel.controller.edits_sent
    result["source_unchanged_while_editing"] = bytes(face.pixelData(0, 0, w, h)) == source

    timings = []                                     # slider move -> preview on the canvas, one at a time
    for i in range(12):
        pos = slider.maximum() * (i % 2) if i % 4 < 2 else slider.maximum() // 2
        target = direction.value_at(pos)
        if abs(panel.controller.values[name] - target) < 1e-9:
            continue
        t0 = time.monotonic()
        slider.setValue(pos)
        # the driver polls this predicate before resuming the generator: still this iteration's target
        yield "a preview", lambda: shown and abs(shown[-1]["values"][name] - target) < 1e-9  # noqa: B023
        timings.append((time.monotonic() - t0) * 1000)
        time.sleep(0.05)
    result["preview_ms"] = timings
    result["preview_configs"] = [s["config"] for s in shown[-3:]]
    slider.setValue(slider.maximum())
    yield "the newest preview again", lambda: abs(shown[-1]["values"][name] - direction.hi) < 1e-6

    panel.apply_button.click()
    yield "Apply", lambda: panel.controller.applied == 1 and find(doc, "Anycost edit") is not None
    doc.waitForDone()
    applied = find(doc, "Anycost edit")
    b = applied.bounds()
    result["applied_bounds"] = [b.x(), b.y(), b.width(), b.height()]
    px = bytes(applied.pixelData(rx, ry, rw, rh))
    result["applied_alpha_centre"] = px[((rh // 2) * rw + rw // 2) * 4 + 3]
    result["applied_alpha_corner"] = px[3]
    result["applied_differs_from_source"] = px != bytes(face.pixelData(rx, ry, rw, rh))
    with open(ENV["ANYCOST_TEST_OUT"] + ".applied", "wb") as f:     # the applied layer over `region`, BGRA
        f.write(bytes(applied.pixelData(*result["region"])))
    result["layers_after_apply"] = layers(doc)
    shot("3-applied")
    if ENV.get("ANYCOST_SCREENSHOTS"):        # picture taking ends here (see docs/krita-plugin.md, Tests)
        result["screenshots_only"] = result["done"] = True
        return
    result["source_unchanged_after_apply"] = bytes(face.pixelData(0, 0, w, h)) == source

    k.action("edit_undo").trigger()
    yield "Undo", lambda: find(doc, "Anycost edit") is None
    doc.waitForDone()
    result["layers_after_undo"] = layers(doc)
    result["source_unchanged_after_undo"] = bytes(face.pixelData(0, 0, w, h)) == source

    # the session outlived Apply: one more tweak, and Apply again adds a second layer; a preview
    # after it goes above both edits (not hidden under them)
    slider.setValue(slider.minimum())
    yield "a preview after Apply", lambda: find(doc, "Anycost preview") is not None
    result["sliders_after_apply"] = slider.isEnabled() and panel.apply_button.isEnabled()
    panel.apply_button.click()
    yield "the second Apply", lambda: panel.controller.applied == 2 and panel.controller.phase == "editing"
    slider.setValue(slider.maximum() // 2)
    yield "a preview over the earlier edit", lambda: find(doc, "Anycost preview") is not None
    result["layers_with_an_earlier_edit"] = layers(doc)           # bottom to top
    panel.compare_button.click()                            # before/after: the preview taken away, then back
    until = time.monotonic() + 5                            # Krita removes it on its queue
    yield "the original shown", lambda: find(doc, "Anycost preview") is None or time.monotonic() > until
    result["layers_while_original"] = layers(doc)
    panel.compare_button.click()
    yield "the preview back", lambda: find(doc, "Anycost preview") is not None
    result["preview_back_after_compare"] = True
    panel.discard_button.click()
    result["layers_after_discard"] = layers(doc)

    panel.settings.steps = 200                              # long enough to show progress, then Cancel
    result["active_after_apply"] = doc.activeNode().name()      # the source stays active: the session goes on
    panel.project_button.click()
    yield "a progress preview", lambda: (find(doc, "Anycost preview") is not None
                                         or panel.controller.phase != "projecting")
    result["progress_preview_seen"] = find(doc, "Anycost preview") is not None
    result["progress_text"] = panel.progress.format()
    panel.cancel_button.click()
    yield "the cancelled projection", lambda: panel.controller.phase == "idle"
    result["layers_after_cancel"] = layers(doc)
    result["discard_after_cancel"] = panel.discard_button.isEnabled()
    result["message_after_cancel"] = panel.message.text()
    panel.settings.steps = 5

    panel.project_button.click()                       # a session open when the document closes
    yield "the second projection", lambda: panel.controller.phase == "editing"
    doc.setModified(False)
    doc.close()
    yield "the session to end", lambda: panel.controller.session is None
    result["after_close"] = panel.message.text()
    result["connection_messages"] = states             # no spurious "Lost the backend"
    result["done"] = True


class Driver(Extension):
    def setup(self):
        Krita.instance().notifier().windowCreated.connect(lambda: QTimer.singleShot(500, self.start))

    def createActions(self, window):
        pass

    def start(self):
        self.result = {}
        self.steps = (first_run if ENV.get("ANYCOST_TEST_SCENARIO") == "first-run" else scenario)(self.result)
        self.waiting = None
        self.timer = QTimer()
        self.timer.timeout.connect(self.tick)
        self.timer.start(2)          # fine-grained: the preview timings below are taken here

    def tick(self):
        try:
            if self.waiting is not None:
                what, ready, deadline = self.waiting
                if not ready():
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"timed out waiting for {what}")
                    return
            what, ready = next(self.steps)
            self.waiting = (what, ready, time.monotonic() + float(ENV.get("ANYCOST_TEST_STEP_TIMEOUT", "60")))
        except StopIteration:
            self.finish()
        except Exception:
            self.result["error"] = traceback.format_exc()
            self.finish()

    def finish(self):
        self.timer.stop()
        with open(ENV["ANYCOST_TEST_OUT"], "w") as f:
            json.dump(self.result, f)
        for d in Krita.instance().documents():
            d.setModified(False)
        Krita.instance().action("file_quit").trigger()


Krita.instance().addExtension(Driver(Krita.instance()))
