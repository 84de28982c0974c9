#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters ▸ Generative ▸ Anycost Edit… (docs/gimp-plugin.md).

Interactive: a dialog with the backend's status, Project, one slider per direction and a live
preview layer; OK adds the full-quality result as a new feathered layer in one undo group, Cancel
leaves no trace. Non-interactive (scripts, batch mode): the direction values are arguments.
"""
import os
import sys
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.join(HERE, "vendor"))      # anycost (protocol, client), anycost_plugin, wheels

import gi  # noqa: E402

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")      # before any import of GimpUi (else PyGIWarning)
from gi.repository import Gimp, GLib, GObject  # noqa: E402

PROC = "python-fu-anycost-edit"
SETTINGS = os.path.join(HERE, "settings.json")     # written by install-plugin and by the dialog
DEFAULT_EXECUTABLE = "anycost-backend"


def fail(procedure, message):
    """An error GIMP shows to the user (and returns to a calling script); a GError needs a domain."""
    error = GLib.Error.new_literal(GLib.quark_from_string("anycost-edit-error"), message, 1)
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, error)


def run(procedure, run_mode, image, drawables, config, data):
    try:
        return edit(procedure, run_mode, image, drawables, config)
    except ImportError as e:
        return fail(procedure, f"Anycost: GIMP's Python lacks the module '{e.name}': run "
                               "`anycost-backend install-plugin gimp` again and follow what it says")
    except Exception as e:                 # a message in GIMP, not a bare traceback
        import traceback
        traceback.print_exc()
        return fail(procedure, f"Anycost: unexpected error: {type(e).__name__}: {e}")


def edit(procedure, run_mode, image, drawables, config):
    from anycost_plugin.batch_edit import EditError, connect, edit_region, parse_edits
    from anycost_plugin.controller import HostError, edit_name
    from anycost_plugin.settings import JsonFileStore, Settings
    from gimp_host import GimpHost

    get = config.get_property
    log_dir = Path(GLib.get_user_cache_dir()) / "anycost"
    if len(drawables) != 1:
        return fail(procedure, "Anycost Edit works on one layer: select a single layer")
    try:
        host = GimpHost(image, drawables[0])
    except HostError as e:
        return fail(procedure, str(e))
    if run_mode == Gimp.RunMode.INTERACTIVE:
        from gi.repository import GimpUi

        from gimp_dialog import EditDialog
        from glib_loop import GLibLoop
        GimpUi.init(PROC)
        store = JsonFileStore(Path(SETTINGS))    # interactive: the dialog's own settings, as Krita's docker
        dialog = EditDialog(host, Settings.load(store), GLibLoop(), log_dir, store=store,
                            editor=f"GIMP {Gimp.version()}")
        if not dialog.run():
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())

    try:
        edits = parse_edits(get("edits") or "")
        Gimp.progress_init("Anycost: projecting…")
        executable = get("executable") or None
        if executable == DEFAULT_EXECUTABLE:     # the program install-plugin found, if it recorded one
            executable = Settings.load(JsonFileStore(Path(SETTINGS))).executable
        with connect(get("backend") or "", executable, log_dir / "anycost-backend.log") as c:
            image_map, (x, y, w, h) = host.source()
            rgb, (rx, ry, rw, rh) = edit_region(
                c, image_map["data"], w, h, edits, model=get("model") or "", steps=get("steps"),
                on_progress=lambda m: Gimp.progress_update(
                    m["data"]["step"] / max(1, m["data"]["steps"])) if "data" in m else None,
                align=bool(get("align")), face=get("face"))
    except EditError as e:
        return fail(procedure, f"Anycost: {e}")
    host.region = (x + rx, y + ry, rw, rh)       # an aligned face: only its surroundings
    host.apply(rgb, rw, rh, get("feather"), edit_name(edits))
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
                               "Projects the layer or the selection's bounds into the model; interactively, "
                               "sliders edit a live preview; non-interactively, 'edits' gives the values "
                               "('smile=1.5, age=-0.5'). The result is a new feathered layer.", name)
        proc.set_attribution("Anycost Editor", "Anycost Editor", "2026")
        rw = GObject.ParamFlags.READWRITE
        proc.add_string_argument("edits", "Edits", "direction=value pairs, e.g. 'smile=1.5, age=-0.5' "
                                                   "(non-interactive use)", "", rw)
        proc.add_string_argument("model", "Model", "a model the backend serves ('' = its default)", "", rw)
        proc.add_int_argument("steps", "Projection steps", "latent optimization steps", 0, 2000, 100, rw)
        proc.add_int_argument("feather", "Feather", "soft edge of the pasted result, px", 0, 512, 16, rw)
        proc.add_boolean_argument("align", "Align the face", "find the face, crop it as the model was trained and "
                                  "blend the edit back (models that declare no alignment: the region as it is)",
                                  True, rw)
        proc.add_int_argument("face", "Face", "which face when there are several, 0 = the largest", 0, 255, 0, rw)
        proc.add_string_argument("backend", "Backend", "anycost-backend address ('' = this user's private "
                                 "socket, where `anycost-backend serve` listens by default)", "", rw)
        proc.add_string_argument("executable", "Backend executable",
                                 "started when no backend answers ('' = never start one; the default: the one "
                                 "install-plugin recorded)", DEFAULT_EXECUTABLE, rw)
        return proc


if __name__ == "__main__":
    Gimp.main(AnycostEdit.__gtype__, sys.argv)
