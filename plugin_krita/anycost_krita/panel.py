"""The Anycost panel (the docker's contents): status, model, Project, sliders, quality, Apply.

Editor-independent: it gets a settings store and a `host_factory` that returns a Host for the
active layer (or raises HostError). The widgets only show anycost_plugin.view_model's EditView and
forward to it; every failure ends up as a message here, never a traceback.
"""
from __future__ import annotations

from anycost.protocol import messages as P
from anycost_plugin.settings import BUDGET_CHOICES, BUDGET_TIP, Settings, budget_label
from anycost_plugin.view_model import SLIDER_STEPS, EditView, Slider

from .qt import (
    HORIZONTAL,
    NO_FRAME,
    SCROLL_OFF,
    TAB_FOCUS,
    TICKS_BELOW,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
    pyqtSignal,
)
from .qt_loop import QtLoop

STATE_COLOURS = {"connected": "#3a3", "unreachable": "#c33"}
__all__ = ["SLIDER_STEPS", "AnycostPanel"]


class DirectionSlider(QSlider):
    """A slider that a double-click puts back on its centre mark."""
    reset_requested = pyqtSignal()

    def mouseDoubleClickEvent(self, event):
        self.reset_requested.emit()
        event.accept()


class AnycostPanel(QWidget):
    def __init__(self, store, host_factory, log_dir=None, parent=None, editor: str = "Krita"):
        """`editor`: the editor's name and version, for the diagnostics zip."""
        super().__init__(parent)
        self.store, self.host_factory, self.editor = store, host_factory, editor
        self.settings = Settings.load(store)
        self.view = EditView(self.settings, QtLoop(), log_dir=log_dir, save=self._save_later)
        self.connection, self.controller = self.view.connection, self.view.controller
        self.sliders: dict[str, tuple[QSlider, QLabel, Slider]] = {}
        self._build()
        self.view.changed.connect(self._refresh)
        self.view.models_changed.connect(self._on_models)
        self.view.progress.connect(self._show_progress)
        self.view.sliders_changed.connect(self._build_sliders)
        self.view.values_reset.connect(self._show_values)
        self.view.faces_changed.connect(self._show_faces)
        self._refresh()
        self.view.start()

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        """Everything inside one scroll area, so the docker fits any screen height; the sliders
        are compact rows; the backend settings fold away."""
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(NO_FRAME)
        self.scroll_area.setHorizontalScrollBarPolicy(SCROLL_OFF)
        outer.addWidget(self.scroll_area)
        content = QWidget()
        self.scroll_area.setWidget(content)
        v = QVBoxLayout(content)
        v.setSpacing(4)
        self.status = QLabel("Not connected")
        self.status.setWordWrap(True)
        v.addWidget(self.status)
        form = QFormLayout()
        self.model_box = QComboBox()
        self.model_box.setToolTip("The face model the backend serves: the photo is projected into it")
        self.model_box.currentIndexChanged.connect(lambda _i: self.view.choose_model(self.model_box.currentText()))
        form.addRow("Model", self.model_box)
        self.quality = QComboBox()
        self.quality.addItems([budget_label(b) for b in BUDGET_CHOICES])
        self.quality.setCurrentIndex(self.settings.budget_index())
        self.quality.setToolTip(BUDGET_TIP)
        self.quality.currentIndexChanged.connect(self.view.choose_budget)
        form.addRow("Preview", self.quality)
        self.align = QCheckBox("Find and align the face")
        self.align.setChecked(self.settings.align_faces)
        self.align.setToolTip("Crop the face the way the model was trained, then blend the edit back into the "
                              "photo; off: project the layer or selection as it is")
        self.align.toggled.connect(self.view.choose_align)
        form.addRow("", self.align)
        self.face_box = QComboBox()
        self.face_box.setToolTip("Several faces were found: the one to edit (projects again)")
        self.face_box.activated.connect(
            lambda i: self.view.choose_face(i, self.host_factory, self.model_box.currentText() or ""))
        form.addRow("Face", self.face_box)
        self._face_row_label = form.labelForField(self.face_box)
        self._show_faces([], 0)
        v.addLayout(form)

        row = QHBoxLayout()
        self.project_button = QPushButton("Project")
        self.project_button.setToolTip("Invert the active layer (or the selection's bounds) into the model")
        self.project_button.clicked.connect(lambda: self.project())   # not clicked(bool)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the projection (nothing is changed in the document)")
        self.cancel_button.clicked.connect(lambda: self.view.cancel())
        row.addWidget(self.project_button)
        row.addWidget(self.cancel_button)
        v.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        v.addWidget(self.progress)

        self.slider_box = QFormLayout()
        self.slider_box.setVerticalSpacing(2)
        v.addLayout(self.slider_box)

        row = QHBoxLayout()
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Every slider back to its centre mark (the photo as projected)")
        self.reset_button.clicked.connect(lambda: self.view.reset())
        self.compare_button = QPushButton("Original")
        self.compare_button.setCheckable(True)
        self.compare_button.setToolTip("Before/after: hide the preview to see the document as it was")
        self.compare_button.toggled.connect(self.view.show_original)
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Render at full quality into a new layer (one undo step); the sliders stay for "
                                     "another edit")
        self.apply_button.clicked.connect(self.apply)
        self.discard_button = QPushButton("Discard")
        self.discard_button.setToolTip("End the edit: remove the preview (applied layers stay)")
        self.discard_button.clicked.connect(lambda: self.view.discard())   # not clicked(bool)
        for b in (self.reset_button, self.compare_button, self.apply_button, self.discard_button):
            row.addWidget(b)
        v.addLayout(row)
        for b in (self.project_button, self.cancel_button, self.reset_button, self.compare_button,
                  self.apply_button, self.discard_button):
            b.setFocusPolicy(TAB_FOCUS)        # a click leaves the focus where it was (not in Feather)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        v.addWidget(self.message)

        self.settings_toggle = QToolButton()
        self.settings_toggle.setText("Settings ▸")
        self.settings_toggle.setCheckable(True)
        self.settings_toggle.setAutoRaise(True)
        self.settings_toggle.toggled.connect(self._show_settings)
        v.addWidget(self.settings_toggle)
        self.settings_box = QWidget()
        settings = QFormLayout(self.settings_box)
        settings.setContentsMargins(0, 0, 0, 0)
        self.feather = QSpinBox()
        self.feather.setRange(0, 512)
        self.feather.setSuffix(" px")
        self.feather.setValue(self.settings.feather)
        self.feather.setToolTip("Soft edge of the applied layer")
        self.feather.valueChanged.connect(self._save_later)
        settings.addRow("Feather", self.feather)
        self.address = QLineEdit(self.settings.address)
        self.address.setPlaceholderText(P.default_address())      # empty: the default endpoint
        self.executable = QLineEdit(self.settings.executable)
        self.executable.setToolTip("The anycost-backend program started when none answers "
                                   "(install-plugin records the one it was run from)")
        self.autostart = QCheckBox("Start the backend when none answers")
        self.autostart.setChecked(self.settings.autostart)
        settings.addRow("Backend", self.address)
        settings.addRow("Executable", self.executable)
        settings.addRow("", self.autostart)
        self.reconnect_button = QPushButton("Save and reconnect")
        self.reconnect_button.clicked.connect(self.reconnect)
        settings.addRow("", self.reconnect_button)
        self.diagnose_button = QPushButton("Write diagnostics…")
        self.diagnose_button.setToolTip("A zip with the logs, versions and settings to attach to a bug report "
                                        "(written to your home folder)")
        self.diagnose_button.clicked.connect(lambda: self.view.diagnose(self.editor))
        settings.addRow("", self.diagnose_button)
        v.addWidget(self.settings_box)
        self.settings_box.setVisible(False)
        v.addStretch(1)

    def _show_progress(self, fraction: float) -> None:
        self.progress.setValue(int(fraction * 100))
        self.progress.setFormat(self.view.projection_text or "%p%")

    def _show_settings(self, on: bool) -> None:
        self.settings_box.setVisible(on)
        self.settings_toggle.setText("Settings ▾" if on else "Settings ▸")

    # ------------------------------------------------------------------ actions

    def project(self, face: int | None = None) -> None:
        self.view.project(self.host_factory, model=self.model_box.currentText() or "", face=face)

    def apply(self) -> None:
        self.view.apply(self.feather.value())

    def reconnect(self) -> None:
        s = Settings(**{**self.settings.__dict__, "address": self.address.text().strip(),
                        "executable": self.executable.text().strip(), "autostart": self.autostart.isChecked()})
        try:
            s.save(self.store)
        except ValueError as e:
            self.view.say(str(e), error=True)
            return
        self.settings.__dict__.update(s.__dict__)
        self.view.discard()
        self.connection.start()

    def shutdown(self) -> None:
        """The editor is closing: end the session, stop a backend we started."""
        self.view.stop()

    def _save_later(self, *_):
        self.settings.feather = self.feather.value()
        try:
            self.settings.save(self.store)
        except ValueError as e:
            self.view.say(str(e), error=True)

    # ------------------------------------------------------------------ showing the view

    def _refresh(self) -> None:
        v = self.view
        self.status.setText(v.status or "Not connected")
        self.status.setStyleSheet(f"color: {STATE_COLOURS[v.state]}" if v.state in STATE_COLOURS else "")
        self.message.setText(v.message.text)
        self.message.setStyleSheet("color: #c33" if v.message.error else "")
        on = v.enabled
        self.project_button.setEnabled(on.project)
        self.cancel_button.setVisible(on.cancel)
        self.progress.setVisible(on.progress)
        self.progress.setFormat(v.projection_text or "%p%")
        self.reset_button.setEnabled(on.reset)
        self.compare_button.setEnabled(on.compare)
        if not on.compare or self.compare_button.isChecked() != v.controller.original_shown:
            self.compare_button.blockSignals(True)
            self.compare_button.setChecked(v.controller.original_shown)
            self.compare_button.blockSignals(False)
        self.apply_button.setEnabled(on.apply)
        self.discard_button.setEnabled(on.discard)
        for slider, _, _ in self.sliders.values():
            slider.setEnabled(on.sliders)
        self.model_box.setEnabled(on.model)
        self.face_box.setEnabled(on.face)

    def _on_models(self, names: list, chosen: int) -> None:
        self.model_box.blockSignals(True)
        self.model_box.clear()
        self.model_box.addItems(names)
        if chosen >= 0:
            self.model_box.setCurrentIndex(chosen)
        self.model_box.blockSignals(False)

    def _show_faces(self, labels: list, chosen: int) -> None:
        """The face menu, shown when a projection found more than one face."""
        self.face_box.clear()
        self.face_box.addItems(labels)
        if labels:
            self.face_box.setCurrentIndex(chosen)
        for widget in (self.face_box, self._face_row_label):
            if widget is not None:
                widget.setVisible(len(labels) > 1)

    def _build_sliders(self, sliders: list) -> None:
        while self.slider_box.rowCount():
            self.slider_box.removeRow(0)
        self.sliders = {}
        for spec in sliders:
            row = QWidget()
            h = QHBoxLayout(row)
            h.setContentsMargins(0, 0, 0, 0)
            h.setSpacing(4)
            slider = DirectionSlider(HORIZONTAL)
            slider.setRange(0, SLIDER_STEPS)
            slider.setValue(spec.position(spec.default))
            slider.setTickPosition(TICKS_BELOW)               # the centre mark: the photo as projected
            slider.setTickInterval(spec.position(spec.default) or SLIDER_STEPS)
            slider.setToolTip(spec.tip)
            slider.setMinimumWidth(60)                        # a narrow docker: the row shrinks, not clips
            label = QLabel(Slider.text(spec.default))
            label.setMinimumWidth(40)
            slider.valueChanged.connect(
                lambda pos, name=spec.name, label=label: label.setText(Slider.text(self.view.move(name, pos))))
            slider.reset_requested.connect(lambda name=spec.name: self.view.reset(name))
            undo = QToolButton()
            undo.setText("↺")
            undo.setAutoRaise(True)
            undo.setToolTip(f"{spec.label} back to {Slider.text(spec.default)}")
            undo.clicked.connect(lambda _=False, name=spec.name: self.view.reset(name))
            h.addWidget(slider)
            h.addWidget(label)
            h.addWidget(undo)
            self.slider_box.addRow(spec.label, row)
            row_label = self.slider_box.labelForField(row)
            if row_label is not None:
                row_label.setToolTip(spec.tip)
            self.sliders[spec.name] = (slider, label, spec)
        self._refresh()

    def _show_values(self) -> None:
        """The sliders at the controller's values (after Reset), without sending edits."""
        for name, (slider, label, spec) in self.sliders.items():
            slider.blockSignals(True)
            slider.setValue(spec.position(self.view.value(name)))
            slider.blockSignals(False)
            label.setText(Slider.text(self.view.value(name)))
