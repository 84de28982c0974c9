"""The interactive Anycost Edit dialog: the flow of Krita's docker on GLib's loop, in a GimpUi
dialog. Its widgets only show anycost_plugin.view_model's EditView and forward to it, as the docker's
do. OK applies; Cancel removes every trace."""
from __future__ import annotations

from pathlib import Path

import gi

gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import GimpUi, GLib, Gtk  # noqa: E402

from anycost_plugin.controller import APPLYING, EDITING, IDLE  # noqa: E402
from anycost_plugin.settings import BUDGET_CHOICES, budget_label  # noqa: E402
from anycost_plugin.view_model import SLIDER_STEPS, EditView, Slider  # noqa: E402


class EditDialog:
    def __init__(self, host, settings, loop, log_dir: Path | None = None):
        self.host, self.settings = host, settings
        self.view = EditView(settings, loop, log_dir=log_dir)
        self.connection, self.controller = self.view.connection, self.view.controller
        self.scales: dict[str, Gtk.Scale] = {}
        self._build()
        self.view.changed.connect(self._refresh)
        self.view.models_changed.connect(self._on_models)
        self.view.progress.connect(self.progress.set_fraction)
        self.view.sliders_changed.connect(self._build_scales)
        self.view.values_reset.connect(self._show_values)
        self.view.faces_changed.connect(self._show_faces)
        self.view.start()

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
        self.quality.connect("changed", lambda combo: self.view.choose_budget(combo.get_active()))
        self.feather = Gtk.SpinButton.new_with_range(0, 512, 1)
        self.feather.set_value(self.settings.feather)
        self.align = Gtk.CheckButton(label="Find and align the face")
        self.align.set_active(self.settings.align_faces)
        self.align.connect("toggled", lambda b: self.view.choose_align(b.get_active()))
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
        self.reset_button.connect("clicked", lambda *_: self.view.reset())
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
        self._refresh()

    def _build_scales(self, sliders: list) -> None:
        """One scale per direction, in the view's integer positions (as the docker's sliders), the
        value printed beside it as the docker prints it."""
        for child in self.scale_grid.get_children():
            self.scale_grid.remove(child)
        self.scales = {}
        for row, spec in enumerate(sliders):
            scale = Gtk.Scale.new_with_range(Gtk.Orientation.HORIZONTAL, 0, SLIDER_STEPS, 1)
            scale.set_draw_value(False)
            scale.set_value(spec.position(spec.default))
            scale.set_hexpand(True)
            value = Gtk.Label(label=Slider.text(spec.default), xalign=1)
            value.set_width_chars(6)
            scale.connect("value-changed", lambda s, name=spec.name, value=value:
                          value.set_text(Slider.text(self.view.move(name, round(s.get_value())))))
            self.scale_grid.attach(Gtk.Label(label=spec.label, xalign=0), 0, row, 1, 1)
            self.scale_grid.attach(scale, 1, row, 1, 1)
            self.scale_grid.attach(value, 2, row, 1, 1)
            self.scales[spec.name] = (scale, value, spec)
        self.scale_grid.show_all()
        self._refresh()

    # ------------------------------------------------------------------ actions

    def project(self, face: int | None = None) -> None:
        self.view.project(self.host, model=self.model_box.get_active_text() or "", face=face)

    def _show_faces(self, labels: list, chosen: int) -> None:
        """The face menu, shown when a projection found more than one face."""
        self.face_box.handler_block(self._face_handler)
        self.face_box.remove_all()
        for label in labels:
            self.face_box.append_text(label)
        if labels:
            self.face_box.set_active(chosen)
        self.face_box.handler_unblock(self._face_handler)
        for widget in (self.face_box, self.face_label):
            widget.set_visible(len(labels) > 1)
            widget.set_no_show_all(len(labels) <= 1)

    def _on_face_chosen(self, combo) -> None:
        self.view.choose_face(combo.get_active(), self.host, self.model_box.get_active_text() or "")

    def _show_values(self) -> None:
        """The scales at the controller's values (after Reset), without sending edits."""
        for name, (scale, value, spec) in self.scales.items():
            scale.set_value(spec.position(self.view.value(name)))
            value.set_text(Slider.text(self.view.value(name)))

    def finish(self, response) -> bool:
        """OK: render at full quality and add the layer (True when it was added). Otherwise (and
        after OK) close the session; the preview layer goes."""
        applied = False
        try:
            if response == Gtk.ResponseType.OK and self.view.phase == EDITING:
                self.view.apply(int(self.feather.get_value()))
                context = GLib.MainContext.default()
                while self.view.phase == APPLYING:
                    context.iteration(True)
                applied = self.view.phase == IDLE and not self.view.message.error
        finally:
            self.view.stop()
        return applied

    def run(self) -> bool:
        self.dialog.show_all()
        while True:
            response = self.dialog.run()
            if response == Gtk.ResponseType.OK and self.view.phase != EDITING:
                self._say("Project the layer first (or Cancel)")
                continue
            break
        applied = self.finish(response)
        self.dialog.destroy()
        return applied

    # ------------------------------------------------------------------ showing the view

    def _say(self, text: str) -> None:
        self.view.say(text, error=True)

    def _refresh(self) -> None:
        v = self.view
        self.status.set_text(v.status or "Connecting…")
        self.message.set_text(v.message.text)
        on = v.enabled
        self.project_button.set_sensitive(on.project)
        self.reset_button.set_sensitive(on.reset)
        self.progress.set_visible(on.progress)
        for scale, _, _ in self.scales.values():
            scale.set_sensitive(on.sliders)
        self.model_box.set_sensitive(on.model)
        self.face_box.set_sensitive(on.face)
        self.dialog.set_response_sensitive(Gtk.ResponseType.OK, on.ok)

    def _on_models(self, names: list, chosen: int) -> None:
        self.model_box.remove_all()
        for n in names:
            self.model_box.append_text(n)
        if chosen >= 0:
            self.model_box.set_active(chosen)
