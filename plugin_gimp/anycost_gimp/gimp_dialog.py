"""The interactive Anycost Edit dialog: the flow of Krita's docker (anycost_plugin's connection and
controller) on GLib's loop, in a GimpUi dialog. OK applies; Cancel removes every trace."""
from __future__ import annotations

from pathlib import Path

import gi

gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import GimpUi, GLib, Gtk  # noqa: E402

from anycost_plugin.connection import CONNECTED, Connection  # noqa: E402
from anycost_plugin.controller import (APPLYING, EDITING, IDLE, PROJECTING, EditController, HostError,  # noqa: E402
                                      face_menu)
from anycost_plugin.settings import BUDGET_CHOICES, budget_label  # noqa: E402



class EditDialog:
    def __init__(self, host, settings, loop, log_dir: Path | None = None):
        self.host, self.settings = host, settings
        self.connection = Connection(settings, loop, log_dir=log_dir)
        self.controller = EditController()
        self.controller.budget_ms = settings.budget_ms()
        self.scales: dict[str, Gtk.Scale] = {}
        self._build()
        self.connection.state_changed.connect(self._on_state)
        self.connection.models_changed.connect(self._on_models)
        self.controller.changed.connect(self._on_phase)
        self.controller.progress.connect(self.progress.set_fraction)
        self.controller.directions_changed.connect(self._build_scales)
        self.controller.faces_found.connect(self._show_faces)
        self.connection.start()

    # ------------------------------------------------------------------ widgets

    def _build(self) -> None:
        d = self.dialog = GimpUi.Dialog(title="Anycost Edit", role="anycost-edit")
        d.add_button("_Cancel", Gtk.ResponseType.CANCEL)
        d.add_button("_OK", Gtk.ResponseType.OK)
        box = d.get_content_area()
        box.set_spacing(6)
        self.status = Gtk.Label(label="Connecting…", xalign=0)
        self.status.set_line_wrap(True)
        box.pack_start(self.status, False, False, 0)
        grid = Gtk.Grid(column_spacing=6, row_spacing=4)
        self.model_box = Gtk.ComboBoxText()
        self.quality = Gtk.ComboBoxText()
        for b in BUDGET_CHOICES:
            self.quality.append_text(budget_label(b))
        self.quality.set_active(self.settings.budget_index())
        self.quality.connect("changed", self._on_quality)
        self.feather = Gtk.SpinButton.new_with_range(0, 512, 1)
        self.feather.set_value(self.settings.feather)
        self.align = Gtk.CheckButton(label="Find and align the face")
        self.align.set_active(self.settings.align_faces)
        self.align.set_tooltip_text("Crop the face the way the model was trained, then blend the edit back into "
                                    "the photo; off: project the layer or selection as it is")
        self.face_box = Gtk.ComboBoxText()
        self.face_box.set_tooltip_text("Several faces were found: the one to edit (projects again)")
        self._face_handler = self.face_box.connect("changed", self._on_face_chosen)
        self.face_label = Gtk.Label(label="Face", xalign=0)
        for row, (label, widget) in enumerate((("Model", self.model_box), ("Preview", self.quality),
                                                ("Feather (px)", self.feather), ("", self.align))):
            grid.attach(Gtk.Label(label=label, xalign=0), 0, row, 1, 1)
            grid.attach(widget, 1, row, 1, 1)
        grid.attach(self.face_label, 0, 4, 1, 1)
        grid.attach(self.face_box, 1, 4, 1, 1)
        box.pack_start(grid, False, False, 0)
        row = Gtk.Box(spacing=6)
        self.project_button = Gtk.Button(label="Project")
        self.project_button.connect("clicked", lambda *_: self.project())
        self.reset_button = Gtk.Button(label="Reset")
        self.reset_button.connect("clicked", lambda *_: self.reset())
        row.pack_start(self.project_button, False, False, 0)
        row.pack_start(self.reset_button, False, False, 0)
        box.pack_start(row, False, False, 0)
        self.progress = Gtk.ProgressBar()
        box.pack_start(self.progress, False, False, 0)
        self.scale_grid = Gtk.Grid(column_spacing=6, row_spacing=2)
        box.pack_start(self.scale_grid, True, True, 0)
        self.message = Gtk.Label(label="", xalign=0)
        self.message.set_line_wrap(True)
        box.pack_start(self.message, False, False, 0)
        self._show_faces([], 0)          # the Face row appears only when a projection finds several
        self._enable()

    def _build_scales(self, directions: list) -> None:
        for child in self.scale_grid.get_children():
            self.scale_grid.remove(child)
        self.scales = {}
        for row, d in enumerate(directions):
            lo, hi = float(d["min"]), float(d["max"])
            scale = Gtk.Scale.new_with_range(Gtk.Orientation.HORIZONTAL, lo, hi, (hi - lo) / 200 or 1)
            scale.set_value(float(d.get("default", 0.0)))
            scale.set_hexpand(True)
            scale.connect("value-changed", lambda s, name=d["name"]: self.set_value(name, s.get_value()))
            self.scale_grid.attach(Gtk.Label(label=d["name"].replace("_", " ").capitalize(), xalign=0), 0, row, 1, 1)
            self.scale_grid.attach(scale, 1, row, 1, 1)
            self.scales[d["name"]] = scale
        self.scale_grid.show_all()
        self._enable()

    # ------------------------------------------------------------------ actions

    def project(self, face: int | None = None) -> None:
        if face is None:
            self._show_faces([], 0)
        try:
            self.controller.attach(self.connection.socket)
            self.controller.project(self.host, model=self.model_box.get_active_text() or "", steps=self.settings.steps,
                                    align=self.align.get_active(), face=face)
        except HostError as e:
            self._say(str(e))

    def _show_faces(self, faces: list, chosen: int) -> None:
        """The face menu, shown when a projection found more than one face."""
        self.face_box.handler_block(self._face_handler)
        self.face_box.remove_all()
        for label in face_menu(faces):
            self.face_box.append_text(label)
        if faces:
            self.face_box.set_active(chosen)
        self.face_box.handler_unblock(self._face_handler)
        for widget in (self.face_box, self.face_label):
            widget.set_visible(len(faces) > 1)
            widget.set_no_show_all(len(faces) <= 1)

    def _on_face_chosen(self, combo) -> None:
        index = combo.get_active()
        if index >= 0 and self.controller.phase in (IDLE, EDITING):
            self.project(face=index)

    def set_value(self, name: str, value: float) -> None:
        try:
            self.controller.set_value(name, value)
        except HostError as e:
            self._say(str(e))

    def reset(self) -> None:
        self.controller.reset()
        for name, scale in self.scales.items():
            scale.set_value(self.controller.values.get(name, 0.0))

    def finish(self, response) -> bool:
        """OK: render at full quality and add the layer (True when it was added). Otherwise (and
        after OK) close the session; the preview layer goes."""
        applied = False
        try:
            if response == Gtk.ResponseType.OK and self.controller.phase == EDITING:
                self.controller.apply(int(self.feather.get_value()))
                context = GLib.MainContext.default()
                while self.controller.phase == APPLYING:
                    context.iteration(True)
                applied = self.controller.phase == IDLE and not self.controller.error
        finally:
            self.controller.discard()
            self.connection.stop()
        return applied

    def run(self) -> bool:
        self.dialog.show_all()
        while True:
            response = self.dialog.run()
            if response == Gtk.ResponseType.OK and self.controller.phase != EDITING:
                self._say("Project the layer first (or Cancel)")
                continue
            break
        applied = self.finish(response)
        self.dialog.destroy()
        return applied

    # ------------------------------------------------------------------ reactions

    def _say(self, text: str) -> None:
        self.message.set_text(text)

    def _on_state(self, state: str, message: str) -> None:
        self.status.set_text(message)
        self.controller.attach(self.connection.socket if state == CONNECTED else None)
        self._enable()

    def _on_models(self, models: list, default: str) -> None:
        self.model_box.remove_all()
        names = [m["name"] for m in models]
        for n in names:
            self.model_box.append_text(n)
        want = self.settings.model_among(names, default)
        if want in names:
            self.model_box.set_active(names.index(want))

    def _on_quality(self, combo) -> None:
        self.settings.budget = BUDGET_CHOICES[combo.get_active()]
        self.controller.budget_ms = self.settings.budget_ms()

    def _on_phase(self, phase: str, message: str) -> None:
        if message or phase == IDLE:
            self._say(message)
        self.progress.set_visible(phase in (PROJECTING, APPLYING))
        self._enable()

    def _enable(self) -> None:
        online, phase = self.connection.connected, self.controller.phase
        self.project_button.set_sensitive(online and phase in (IDLE, EDITING))
        self.reset_button.set_sensitive(online and phase == EDITING)
        for scale in self.scales.values():
            scale.set_sensitive(online and phase == EDITING)
        self.dialog.set_response_sensitive(Gtk.ResponseType.OK, phase in (IDLE, EDITING))
