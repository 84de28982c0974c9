"""The Anycost panel (the docker's contents): status, model, Project, sliders, quality, Apply.

Editor-independent: it gets a settings store and a `host_factory` that returns a Host for the
active layer (or raises HostError). The widgets only show anycost_plugin.view_model's EditView and
forward to it; every failure ends up as a message here, never a traceback.
"""
from __future__ import annotations

from anycost.protocol import messages as P
from anycost_plugin.settings import BUDGET_CHOICES, Settings, budget_label
from anycost_plugin.view_model import SLIDER_STEPS, EditView, Slider

from .qt import (
    HORIZONTAL,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from .qt_loop import QtLoop

STATE_COLOURS = {"connected": "#3a3", "unreachable": "#c33"}
__all__ = ["SLIDER_STEPS", "AnycostPanel"]


class AnycostPanel(QWidget):
    def __init__(self, store, host_factory, log_dir=None, parent=None):
        super().__init__(parent)
        self.store, self.host_factory = store, host_factory
        self.settings = Settings.load(store)
        self.view = EditView(self.settings, QtLoop(), log_dir=log_dir, save=self._save_later)
        self.connection, self.controller = self.view.connection, self.view.controller
        self.sliders: dict[str, tuple[QSlider, QLabel, Slider]] = {}
        self._build()
        self.view.changed.connect(self._refresh)
        self.view.models_changed.connect(self._on_models)
        self.view.progress.connect(lambda f: self.progress.setValue(int(f * 100)))
        self.view.sliders_changed.connect(self._build_sliders)
        self.view.values_reset.connect(self._show_values)
        self.view.faces_changed.connect(self._show_faces)
        self._refresh()
        self.view.start()

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        v = QVBoxLayout(self)
        self.status = QLabel("Not connected")
        self.status.setWordWrap(True)
        v.addWidget(self.status)
        form = QFormLayout()
        self.model_box = QComboBox()
        self.model_box.currentIndexChanged.connect(lambda _i: self.view.choose_model(self.model_box.currentText()))
        form.addRow("Model", self.model_box)
        self.quality = QComboBox()
        self.quality.addItems([budget_label(b) for b in BUDGET_CHOICES])
        self.quality.setCurrentIndex(self.settings.budget_index())
        self.quality.setToolTip("Preview latency budget: the backend picks the best sub-generator that fits")
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
        self.cancel_button.clicked.connect(lambda: self.view.cancel())
        row.addWidget(self.project_button)
        row.addWidget(self.cancel_button)
        v.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        v.addWidget(self.progress)

        self.slider_box = QFormLayout()
        v.addLayout(self.slider_box)

        row = QHBoxLayout()
        self.reset_button = QPushButton("Reset")
        self.reset_button.clicked.connect(lambda: self.view.reset())
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Render at full quality into a new layer (one undo step)")
        self.apply_button.clicked.connect(self.apply)
        self.discard_button = QPushButton("Discard")
        self.discard_button.clicked.connect(lambda: self.view.discard())   # not clicked(bool)
        for b in (self.reset_button, self.apply_button, self.discard_button):
            row.addWidget(b)
        v.addLayout(row)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        v.addWidget(self.message)

        settings = QFormLayout()
        self.feather = QSpinBox()
        self.feather.setRange(0, 512)
        self.feather.setSuffix(" px")
        self.feather.setValue(self.settings.feather)
        self.feather.valueChanged.connect(self._save_later)
        settings.addRow("Feather", self.feather)
        self.address = QLineEdit(self.settings.address)
        self.address.setPlaceholderText(P.default_address())      # empty: the default endpoint
        self.executable = QLineEdit(self.settings.executable)
        self.autostart = QCheckBox("Start the backend when none answers")
        self.autostart.setChecked(self.settings.autostart)
        settings.addRow("Backend", self.address)
        settings.addRow("Executable", self.executable)
        settings.addRow("", self.autostart)
        self.reconnect_button = QPushButton("Save and reconnect")
        self.reconnect_button.clicked.connect(self.reconnect)
        settings.addRow("", self.reconnect_button)
        v.addLayout(settings)
        v.addStretch(1)

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
        self.reset_button.setEnabled(on.reset)
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
            slider = QSlider(HORIZONTAL)
            slider.setRange(0, SLIDER_STEPS)
            slider.setValue(spec.position(spec.default))
            label = QLabel(Slider.text(spec.default))
            label.setMinimumWidth(40)
            slider.valueChanged.connect(
                lambda pos, name=spec.name, label=label: label.setText(Slider.text(self.view.move(name, pos))))
            h.addWidget(slider)
            h.addWidget(label)
            self.slider_box.addRow(spec.label, row)
            self.sliders[spec.name] = (slider, label, spec)
        self._refresh()

    def _show_values(self) -> None:
        """The sliders at the controller's values (after Reset), without sending edits."""
        for name, (slider, label, spec) in self.sliders.items():
            slider.blockSignals(True)
            slider.setValue(spec.position(self.view.value(name)))
            slider.blockSignals(False)
            label.setText(Slider.text(self.view.value(name)))
