#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters ▸ Generative ▸ Anycost Edit… (docs/gimp-plugin.md).

Projects the layer (or the selection's bounds) with anycost-backend, renders it with the given
direction values and pastes the result into a new layer with feathered edges, in one undo group.
This file is the only one that touches GIMP's API; the editing itself is anycost_plugin.oneshot.
"""
import os
import sys
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.join(HERE, "vendor"))      # anycost (protocol, client), anycost_plugin, wheels

import gi  # noqa: E402
gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

PROC = "python-fu-anycost-edit"
DEFAULT_ADDRESS = "tcp://127.0.0.1:5557"
FORMAT = "R'G'B'A u8"


def fail(procedure, message):
    """An error GIMP shows to the user (and returns to a calling script); a GError needs a domain."""
    error = GLib.Error.new_literal(GLib.quark_from_string("anycost-edit-error"), message, 1)
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, error)


def region_of(image, drawable):
    """The selection's bounds (or the layer's) in image coordinates, clipped to the layer."""
    _, ox, oy = drawable.get_offsets()
    lw, lh = drawable.get_width(), drawable.get_height()
    non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)[-5:]     # (success,) non_empty, bounds
    if not non_empty:
        x1, y1, x2, y2 = ox, oy, ox + lw, oy + lh
    x1, y1 = max(x1, ox), max(y1, oy)
    x2, y2 = min(x2, ox + lw), min(y2, oy + lh)
    return x1, y1, x2 - x1, y2 - y1, ox, oy


def run(procedure, run_mode, image, drawables, config, data):
    try:
        return edit(procedure, run_mode, image, drawables, config)
    except Exception as e:                 # a message in GIMP, not a bare traceback
        import traceback
        traceback.print_exc()
        return fail(procedure, f"Anycost: unexpected error: {type(e).__name__}: {e}")


def edit(procedure, run_mode, image, drawables, config):
    try:
        from anycost_plugin.oneshot import EditError, connect, edit_region, parse_edits
    except ImportError as e:
        return fail(procedure, f"Anycost: GIMP's Python lacks the module '{e.name}': run "
                               "`anycost-backend install-plugin gimp` again and follow what it says")

    if run_mode == Gimp.RunMode.INTERACTIVE:
        gi.require_version("GimpUi", "3.0")
        from gi.repository import GimpUi
        GimpUi.init(PROC)
        dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config)
        dialog.fill(None)
        if not dialog.run():
            dialog.destroy()
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        dialog.destroy()
    if len(drawables) != 1 or not isinstance(drawables[0], Gimp.Layer):
        return fail(procedure, "Anycost Edit works on one layer: select a single layer")
    layer = drawables[0]
    x, y, w, h, ox, oy = region_of(image, layer)
    if w < 8 or h < 8:
        return fail(procedure, "The layer (or selection) is empty or smaller than 8×8 px")
    get = config.get_property
    try:
        edits = parse_edits(get("edits") or "")
        Gimp.progress_init("Anycost: projecting…")
        log = Path(GLib.get_user_cache_dir()) / "anycost" / "anycost-backend.log"
        client = connect(get("backend") or DEFAULT_ADDRESS, get("executable") or None, log)
        with client:
            rgba = bytes(layer.get_buffer().get(Gegl.Rectangle.new(x - ox, y - oy, w, h), 1.0, FORMAT,
                                                Gegl.AbyssPolicy.CLAMP))
            out = edit_region(client, rgba, w, h, edits, model=get("model") or "", steps=get("steps"),
                              feather=get("feather"),
                              on_progress=lambda m: Gimp.progress_update(
                                  m["data"]["step"] / max(1, m["data"]["steps"])) if "data" in m else None)
    except EditError as e:
        return fail(procedure, f"Anycost: {e}")
    label = ", ".join(f"{k} {v:+.2f}" for k, v in edits.items()) or "projection"
    image.undo_group_start()
    try:
        result = Gimp.Layer.new(image, f"Anycost edit ({label})", w, h, Gimp.ImageType.RGBA_IMAGE, 100.0,
                                Gimp.LayerMode.NORMAL)
        image.insert_layer(result, layer.get_parent(), image.get_item_position(layer))
        result.set_offsets(x, y)
        buf = result.get_buffer()
        buf.set(Gegl.Rectangle.new(0, 0, w, h), FORMAT, out)
        buf.flush()
        result.update(0, 0, w, h)
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


class AnycostEdit(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROC]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        proc.set_image_types("RGB*")
        proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        proc.set_menu_label("Anycost _Edit…")
        proc.add_menu_path("<Image>/Filters/Generative")
        proc.set_documentation("GAN edit of a portrait with anycost-backend",
                               "Projects the layer or the selection's bounds into the model and renders it with "
                               "the given attribute values ('smile=1.5, age=-0.5') into a new feathered layer.",
                               name)
        proc.set_attribution("Anycost Editor", "Anycost Editor", "2026")
        rw = GObject.ParamFlags.READWRITE
        proc.add_string_argument("edits", "Edits", "direction=value pairs, e.g. 'smile=1.5, age=-0.5'", "", rw)
        proc.add_string_argument("model", "Model", "a model the backend serves ('' = its default)", "", rw)
        proc.add_int_argument("steps", "Projection steps", "latent optimization steps", 0, 2000, 100, rw)
        proc.add_int_argument("feather", "Feather", "soft edge of the pasted result, px", 0, 512, 16, rw)
        proc.add_string_argument("backend", "Backend", "anycost-backend address", DEFAULT_ADDRESS, rw)
        proc.add_string_argument("executable", "Backend executable",
                                 "started when no backend answers ('' = never start one)", "anycost-backend", rw)
        return proc


Gimp.main(AnycostEdit.__gtype__, sys.argv)
