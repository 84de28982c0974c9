"""The interactive Anycost Edit dialog: the flow of Krita's docker on GLib's loop, in a GimpUi
dialog. Its widgets only show anycost_plugin.view_model's EditView and forward to it, as the docker's
do. OK applies and closes; "Add layer" applies and keeps the sliders; Cancel removes the preview
(layers already added stay, each its own undo step)."""
from __future__ import annotations

from pathlib import Path

import gi

gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
gi.require_version("Gdk", "3.0")
from gi.repository import Gdk, GimpUi, GLib, Gtk  # noqa: E402

from anycost.protocol import messages as P  # noqa: E402
from anycost_plugin.controller import APPLYING, EDITING  # noqa: E402
from anycost_plugin.settings import BUDGET_CHOICES, BUDGET_TIP, Settings, SettingsStore, budget_label  # noqa: E402
from anycost_plugin.view_model import SLIDER_STEPS, EditView, Slider  # noqa: E402

SLIDERS_MIN_PX, SLIDERS_MAX_PX = 150, 300     # the slider list scrolls beyond this: the dialog fits 768 px


class EditDialog:
    def __init__(self, host, settings: Settings, loop, log_dir: Path | None = None,
                 store: SettingsStore | None = None, editor: str = "GIMP"):
        """`store`: where the settings the dialog changes are saved (the plug-in's settings file);
        `editor`: the editor's name and version, for the diagnostics zip."""
        self.host, self.settings, self.store, self.editor = host, settings, store, editor
        self.view = EditView(settings, loop, log_dir=log_dir, save=self._save)
        self.connection, self.controller = self.view.connection, self.view.controller
        self.scales: dict[str, Gtk.Scale] = {}
        self._build()
        self.view.changed.connect(self._refresh)
        self.view.models_changed.connect(self._on_models)
        self.view.progress.connect(self._show_progress)
        self.view.sliders_changed.connect(self._build_scales)
        self.view.values_reset.connect(self._show_values)
        self.view.faces_changed.connect(self._show_faces)
        self.view.start()

    # ------------------------------------------------------------------ widgets

    def _build(self) -> None:
        d = self.dialog = GimpUi.Dialog(title="Anycost Edit", role="anycost-edit")
        d.add_button("_Cancel", Gtk.ResponseType.CANCEL)
        d.add_button("_OK", Gtk.ResponseType.OK)
        d.set_default_size(440, -1)
        box = d.get_content_area()
        box.set_spacing(6)
        self.status = Gtk.Label(label="Connecting…", xalign=0)
        self.status.set_line_wrap(True)
        box.pack_start(self.status, False, False, 0)
        grid = Gtk.Grid(column_spacing=6, row_spacing=4)
        self.model_box = Gtk.ComboBoxText()
        self.model_box.set_tooltip_text("The face model the backend serves: the photo is projected into it")
        self.quality = Gtk.ComboBoxText()
        for b in BUDGET_CHOICES:
            self.quality.append_text(budget_label(b))
        self.quality.set_active(self.settings.budget_index())
        self.quality.set_tooltip_text(BUDGET_TIP)
        self.quality.connect("changed", lambda combo: self.view.choose_budget(combo.get_active()))
        self.feather = Gtk.SpinButton.new_with_range(0, 512, 1)
        self.feather.set_value(self.settings.feather)
        self.feather.set_tooltip_text("Soft edge of the added layer")
        self.feather.connect("value-changed", lambda *_: self._save())
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
        self.project_button.set_tooltip_text("Invert the layer (or the selection's bounds) into the model")
        self.project_button.connect("clicked", lambda *_: self.project())
        self.cancel_button = Gtk.Button(label="Stop")
        self.cancel_button.set_tooltip_text("Stop the projection (the dialog stays open)")
        self.cancel_button.connect("clicked", lambda *_: self.view.cancel())
        self.reset_button = Gtk.Button(label="Reset")
        self.reset_button.set_tooltip_text("Every slider back to its centre mark (the photo as projected)")
        self.reset_button.connect("clicked", lambda *_: self.view.reset())
        self.compare_button = Gtk.ToggleButton(label="Original")
        self.compare_button.set_tooltip_text("Before/after: hide the preview to see the image as it was")
        self._compare_handler = self.compare_button.connect(
            "toggled", lambda b: self.view.show_original(b.get_active()))
        self.apply_button = Gtk.Button(label="Add layer")
        self.apply_button.set_tooltip_text("Render at full quality into a new layer and keep editing "
                                           "(OK does the same and closes)")
        self.apply_button.connect("clicked", lambda *_: self.view.apply(int(self.feather.get_value())))
        for b in (self.project_button, self.cancel_button, self.reset_button, self.compare_button,
                  self.apply_button):
            row.pack_start(b, False, False, 0)
            b.set_focus_on_click(False)         # focus stays where it was (not thrown into Feather)
        box.pack_start(row, False, False, 0)
        self.progress = Gtk.ProgressBar()
        self.progress.set_show_text(True)
        for widget in (self.progress, self.cancel_button):
            widget.set_no_show_all(True)        # shown by _refresh while a projection runs
        box.pack_start(self.progress, False, False, 0)
        self.scale_grid = Gtk.Grid(column_spacing=6, row_spacing=2)
        self.scroller = Gtk.ScrolledWindow()
        self.scroller.set_policy(Gtk.PolicyType.NEVER, Gtk.PolicyType.AUTOMATIC)
        self.scroller.set_min_content_height(SLIDERS_MIN_PX)
        self.scroller.set_max_content_height(SLIDERS_MAX_PX)
        self.scroller.set_propagate_natural_height(True)
        self.scroller.add(self.scale_grid)
        box.pack_start(self.scroller, True, True, 0)
        self.message = Gtk.Label(label="", xalign=0)
        self.message.set_line_wrap(True)
        box.pack_start(self.message, False, False, 0)
        box.pack_start(self._backend_settings(), False, False, 0)
        self._show_faces([], 0)          # the Face row appears only when a projection finds several
        self._refresh()

    def _backend_settings(self) -> Gtk.Expander:
        """Where the backend is and whether to start it: install-plugin fills these in."""
        expander = Gtk.Expander(label="Backend settings")
        grid = Gtk.Grid(column_spacing=6, row_spacing=4)
        self.address = Gtk.Entry(text=self.settings.address, hexpand=True)
        self.address.set_placeholder_text(P.default_address())     # empty: the default endpoint
        self.executable = Gtk.Entry(text=self.settings.executable, hexpand=True)
        self.executable.set_tooltip_text("The anycost-backend program started when none answers "
                                         "(install-plugin records the one it was run from)")
        self.autostart = Gtk.CheckButton(label="Start the backend when none answers")
        self.autostart.set_active(self.settings.autostart)
        self.reconnect_button = Gtk.Button(label="Save and reconnect")
        self.reconnect_button.connect("clicked", lambda *_: self.reconnect())
        self.diagnose_button = Gtk.Button(label="Write diagnostics…")
        self.diagnose_button.set_tooltip_text("A zip with the logs, versions and settings to attach to a bug report "
                                              "(written to your home folder)")
        self.diagnose_button.connect("clicked", lambda *_: self.view.diagnose(self.editor))
        for row, (label, widget) in enumerate((("Backend", self.address), ("Executable", self.executable),
                                                ("", self.autostart), ("", self.reconnect_button),
                                                ("", self.diagnose_button))):
            grid.attach(Gtk.Label(label=label, xalign=0), 0, row, 1, 1)
            grid.attach(widget, 1, row, 1, 1)
        expander.add(grid)
        return expander

    def _show_progress(self, fraction: float) -> None:
        self.progress.set_fraction(fraction)
        self.progress.set_text(self.view.projection_text or None)

    def _build_scales(self, sliders: list) -> None:
        """One scale per direction, in the view's integer positions (as the docker's sliders), the
        value printed beside it as the docker prints it, a mark at the centre, a reset button."""
        for child in self.scale_grid.get_children():
            self.scale_grid.remove(child)
        self.scales = {}
        for row, spec in enumerate(sliders):
            scale = Gtk.Scale.new_with_range(Gtk.Orientation.HORIZONTAL, 0, SLIDER_STEPS, 1)
            scale.set_draw_value(False)
            scale.set_value(spec.position(spec.default))
            scale.add_mark(spec.position(spec.default), Gtk.PositionType.BOTTOM, None)
            scale.set_hexpand(True)
            scale.set_tooltip_text(spec.tip)
            value = Gtk.Label(label=Slider.text(spec.default), xalign=1)
            value.set_width_chars(6)
            scale.connect("value-changed", lambda s, name=spec.name, value=value:
                          value.set_text(Slider.text(self.view.move(name, round(s.get_value())))))
            scale.connect("button-press-event", lambda s, event, name=spec.name: self._scale_clicked(event, name))
            undo = Gtk.Button(label="↺", relief=Gtk.ReliefStyle.NONE)
            undo.set_tooltip_text(f"{spec.label} back to {Slider.text(spec.default)}")
            undo.set_focus_on_click(False)
            undo.connect("clicked", lambda *_, name=spec.name: self.view.reset(name))
            label = Gtk.Label(label=spec.label, xalign=0)
            label.set_tooltip_text(spec.tip)
            self.scale_grid.attach(label, 0, row, 1, 1)
            self.scale_grid.attach(scale, 1, row, 1, 1)
            self.scale_grid.attach(value, 2, row, 1, 1)
            self.scale_grid.attach(undo, 3, row, 1, 1)
            self.scales[spec.name] = (scale, value, spec)
        self.scale_grid.show_all()
        self._refresh()

    def _scale_clicked(self, event, name: str) -> bool:
        if event.type == Gdk.EventType._2BUTTON_PRESS:      # a double-click: back to the centre mark
            self.view.reset(name)
            return True
        return False

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

    def reconnect(self) -> None:
        s = Settings(**{**self.settings.__dict__, "address": self.address.get_text().strip(),
                        "executable": self.executable.get_text().strip(), "autostart": self.autostart.get_active()})
        try:
            s.validate()
        except ValueError as e:
            self._say(str(e))
            return
        self.settings.__dict__.update(s.__dict__)
        self._save()
        self.view.discard()
        self.connection.start()

    def _save(self) -> None:
        self.settings.feather = int(self.feather.get_value()) if hasattr(self, "feather") else self.settings.feather
        if self.store is not None:
            try:
                self.settings.save(self.store)
            except (ValueError, OSError) as e:
                self._say(f"The settings could not be saved: {e}")

    def _show_values(self) -> None:
        """The scales at the controller's values (after Reset), without sending edits."""
        for name, (scale, value, spec) in self.scales.items():
            scale.set_value(spec.position(self.view.value(name)))
            value.set_text(Slider.text(self.view.value(name)))

    def finish(self, response) -> bool:
        """OK: render at full quality and add the layer (True when it was added). Otherwise (and
        after OK) close the session; the preview layer goes."""
        try:
            if response == Gtk.ResponseType.OK and self.view.phase == EDITING:
                before = self.controller.applied
                self.view.apply(int(self.feather.get_value()))
                context = GLib.MainContext.default()
                while self.view.phase == APPLYING:
                    context.iteration(True)
                if self.controller.applied == before:
                    return False
        finally:
            self.view.stop()
        return self.controller.applied > 0

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
        self.cancel_button.set_visible(on.cancel)
        self.reset_button.set_sensitive(on.reset)
        self.apply_button.set_sensitive(on.apply)
        self.compare_button.set_sensitive(on.compare)
        if self.compare_button.get_active() != v.controller.original_shown:
            self.compare_button.handler_block(self._compare_handler)
            self.compare_button.set_active(v.controller.original_shown)
            self.compare_button.handler_unblock(self._compare_handler)
        self.progress.set_visible(on.progress)
        self.progress.set_text(v.projection_text or None)
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
