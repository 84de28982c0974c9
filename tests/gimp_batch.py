# Runs inside GIMP 3 (gimp-console-3.0 --batch-interpreter=python-fu-eval), for test_gimp_real.py:
# calls the installed plug-in through the PDB, non-interactively, and records the result as JSON.
# Its parameters come from the JSON file named by $ANYCOST_TEST_PARAMS.
import json
import os
import sys

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gimp  # noqa: E402 (after gi.require_version, as PyGObject needs)

P = json.load(open(os.environ["ANYCOST_TEST_PARAMS"]))
sys.path.insert(0, os.path.dirname(os.environ["ANYCOST_TEST_PARAMS"]))
from gimp_test_image import face_image, pixels  # noqa: E402

W, H, (RX, RY, RW, RH) = P["w"], P["h"], P["region"]
res = {}
try:
    image, face = face_image(P)
    source = pixels(face, W, H)
    proc = Gimp.get_pdb().lookup_procedure("python-fu-anycost-edit")
    res["registered"] = proc is not None
    res["menu_paths"] = list(proc.get_menu_paths())

    def call(edits):
        cfg = proc.create_config()
        cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
        cfg.set_property("image", image)
        cfg.set_core_object_array("drawables", [face])
        for key, value in (("edits", edits), ("backend", P["address"]), ("steps", 5), ("feather", 6),
                           ("executable", "")):
            cfg.set_property(key, value)
        out = proc.run(cfg)
        status = out.index(0)
        return status, ("" if status == Gimp.PDBStatusType.SUCCESS else Gimp.get_pdb().get_last_error())

    status, message = call("nope=1")
    res["bad_status"], res["bad_message"] = status.value_nick, message
    res["layers_after_bad"] = [layer.get_name() for layer in image.get_layers()]
    status, message = call(P["edits"])
    res["status"], res["message"] = status.value_nick, message
    layers = image.get_layers()
    res["layers"] = [layer.get_name() for layer in layers]
    new = layers[0]
    _, ox, oy = new.get_offsets()
    res["new_bounds"] = [ox, oy, new.get_width(), new.get_height()]
    px = pixels(new, RW, RH)
    res["alpha_centre"], res["alpha_corner"] = px[((RH // 2) * RW + RW // 2) * 4 + 3], px[3]
    region_src = b"".join(source[((RY + r) * W + RX) * 4:((RY + r) * W + RX + RW) * 4] for r in range(RH))
    res["differs_from_source"] = px != region_src
    res["source_unchanged"] = pixels(face, W, H) == source
    with open(P["out"] + ".applied", "wb") as f:          # the new layer, all of it (RGBA)
        f.write(pixels(new, new.get_width(), new.get_height()))
    res["done"] = True
except Exception:
    import traceback
    res["error"] = traceback.format_exc()
with open(P["out"], "w") as f:
    json.dump(res, f)
