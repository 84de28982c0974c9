# Runs inside GIMP 3 with a display (Xvfb), for test_gimp_real.py: builds the plug-in's interactive
# dialog on an image and drives it like a user (Project, drag a slider, OK; then Project, Cancel),
# recording what the image looks like after each step. Parameters: $ANYCOST_TEST_PARAMS (JSON).
import json
import os
import sys
import time

import gi

gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import GimpUi, GLib, Gtk  # noqa: E402 (after gi.require_version, as PyGObject needs)

P = json.load(open(os.environ["ANYCOST_TEST_PARAMS"]))
sys.path.insert(0, P["plugin_dir"])
sys.path.insert(0, os.path.dirname(os.environ["ANYCOST_TEST_PARAMS"]))
sys.path.append(os.path.join(P["plugin_dir"], "vendor"))
W, H, (RX, RY, RW, RH) = P["w"], P["h"], P["region"]
res = {}


def pump(ready, what, timeout=60.0):
    context, deadline = GLib.MainContext.default(), time.monotonic() + timeout
    while not ready() or timeout < 1:
        if time.monotonic() > deadline:
            if timeout < 1:
                return
            raise TimeoutError(f"timed out waiting for {what}")
        context.iteration(False)
        time.sleep(0.002)


def names(image):
    return [layer.get_name() for layer in image.get_layers()]


try:
    from anycost_plugin.settings import Settings
    from gimp_dialog import EditDialog
    from gimp_host import GimpHost
    from gimp_test_image import face_image, pixels
    from glib_loop import GLibLoop
    GimpUi.init("python-fu-eval")
    image, face = face_image(P)
    source = pixels(face, W, H)

    def dialog():
        d = EditDialog(GimpHost(image, face), Settings(address=P["address"], autostart=False, feather=6, steps=5),
                       GLibLoop())
        d.dialog.show_all()
        pump(lambda: d.connection.connected, "the connection")
        return d

    d = dialog()
    res["status"] = d.status.get_text()
    d.project_button.clicked()
    pump(lambda: d.controller.phase == "editing", "the projection")
    res["layers_editing"] = names(image)
    res["align_checked"] = d.align.get_active()
    res["face_row_visible"] = d.face_box.get_visible()     # one face (here: a model without alignment)
    preview = image.get_layers()[0]
    before = pixels(preview, RW, RH)
    name, (scale, value_label, spec) = next(iter(d.scales.items()))
    shown = []
    d.controller.preview_shown.connect(shown.append)
    top = scale.get_adjustment().get_upper()             # the slider's last position: the direction's max
    for i in range(1, 11):                               # a fast drag
        scale.set_value(round(top * i / 10))
    pump(lambda: shown and abs(shown[-1]["values"][name] - spec.hi) < 1e-6, "the newest preview")
    res["value_label"] = value_label.get_text()
    if P.get("screenshots"):                             # the dialog as the user sees it now
        from gi.repository import Gdk
        pump(lambda: True, "drawing", 0.5)
        window = d.dialog.get_window()
        Gdk.pixbuf_get_from_window(window, 0, 0, window.get_width(), window.get_height()).savev(
            os.path.join(os.path.dirname(P["out"]), "gimp-dialog.png"), "png", [], [])
    res["preview_changed"] = pixels(image.get_layers()[0], RW, RH) != before
    res["edits_sent"] = d.controller.edits_sent
    d.apply_button.clicked()                             # "Add layer": a layer, and the sliders stay
    pump(lambda: d.controller.applied == 1 and d.controller.phase == "editing", "Add layer")
    res["layers_after_add"] = names(image)
    scale.set_value(0)
    pump(lambda: "Anycost preview" in names(image), "a preview after Add layer")
    res["layers_preview_over_edit"] = names(image)       # top first
    d.compare_button.set_active(True)                    # before/after: the preview taken away, then back
    res["layers_while_original"] = names(image)
    d.compare_button.set_active(False)
    res["preview_back_after_compare"] = names(image)[0] == "Anycost preview"
    scale.set_value(top)
    pump(lambda: shown and abs(shown[-1]["values"][name] - spec.hi) < 1e-6, "the newest preview again")
    res["applied"] = d.finish(Gtk.ResponseType.OK)
    d.dialog.destroy()
    layers = image.get_layers()
    res["layers_after_ok"] = names(image)
    new = layers[0]
    _, ox, oy = new.get_offsets()
    res["new_bounds"] = [ox, oy, new.get_width(), new.get_height()]
    px = pixels(new, RW, RH)
    res["alpha_centre"], res["alpha_corner"] = px[((RH // 2) * RW + RW // 2) * 4 + 3], px[3]

    # a laptop screen: 16 sliders scroll inside the dialog, which stays within 768 px
    from anycost.protocol.messages import DirectionInfo
    from anycost_plugin.settings import JsonFileStore
    from anycost_plugin.view_model import Slider
    store = JsonFileStore(os.path.join(P["plugin_dir"], "settings.json"))      # what install-plugin wrote
    d = EditDialog(GimpHost(image, face), Settings.load(store), GLibLoop(), store=store)
    d.dialog.show_all()
    d._build_scales([Slider.from_direction(DirectionInfo(f"PC{i}", -3.0, 3.0)) for i in range(1, 17)])
    pump(lambda: True, "layout", 0.2)
    res["dialog_height_16_sliders"] = d.dialog.get_preferred_size()[1].height
    res["slider_labels"] = [spec.label for _, _, spec in d.scales.values()][:2]
    res["recorded_executable"] = d.executable.get_text()
    d.finish(Gtk.ResponseType.CANCEL)
    d.dialog.destroy()

    d = dialog()                                         # Stop: the projection alone, no preview left
    d.settings.steps = 200
    d.project_button.clicked()
    pump(lambda: "Anycost preview" in names(image) or d.controller.phase != "projecting", "a progress preview")
    res["progress_text"] = d.progress.get_text()
    res["stop_visible"] = d.cancel_button.get_visible()
    d.cancel_button.clicked()
    pump(lambda: d.controller.phase == "idle", "the stopped projection")
    res["layers_after_stop"] = names(image)
    res["message_after_stop"] = d.message.get_text()
    d.finish(Gtk.ResponseType.CANCEL)
    d.dialog.destroy()

    d = dialog()                                         # Cancel leaves no trace
    d.project_button.clicked()
    pump(lambda: d.controller.phase == "editing", "the second projection")
    next(iter(d.scales.values()))[0].set_value(top)
    pump(lambda: d.controller.edits_sent > 0 and "Anycost preview" in names(image), "a preview")
    res["cancel_applied"] = d.finish(Gtk.ResponseType.CANCEL)
    d.dialog.destroy()
    res["layers_after_cancel"] = names(image)
    res["source_unchanged"] = pixels(face, W, H) == source
    res["undo_enabled_after"] = image.undo_is_enabled()   # the preview's freeze/thaw are balanced
    res["done"] = True
except Exception:
    import traceback
    res["error"] = traceback.format_exc()
with open(P["out"], "w") as f:
    json.dump(res, f)
