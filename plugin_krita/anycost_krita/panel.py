"""The Anycost panel (the docker's contents): status, model, Project, sliders, quality, Apply.

Editor-independent: it gets a settings store and a `host_factory` that returns a Host for the
active layer (or raises HostError). Every failure ends up as a message here, never a traceback.
"""
from __future__ import annotations

import logging

from anycost import protocol as P
from anycost_plugin.connection import CONNECTED, Connection
from anycost_plugin.controller import APPLYING, EDITING, IDLE, PROJECTING, EditController, HostError, face_menu
from anycost_plugin.settings import BUDGET_CHOICES, Settings, budget_label

from .qt import (HORIZONTAL, QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                 QProgressBar, QPushButton, QSlider, QSpinBox, QTimer, QVBoxLayout, QWidget)
from .qt_loop import QtLoop

log = logging.getLogger("anycost_krita")
SLIDER_STEPS = 200
STATE_COLOURS = {"connected": "#3a3", "unreachable": "#c33"}


class AnycostPanel(QWidget):
    def __init__(self, store, host_factory, log_dir=None, parent=None):
        super().__init__(parent)
        self.store, self.host_factory = store, host_factory
        self.settings = Settings.load(store)
        self.connection = Connection(self.settings, QtLoop(), log_dir=log_dir)
        self.controller = EditController()
        self.controller.budget_ms = self.settings.budget_ms()
        self.sliders: dict[str, tuple[QSlider, QLabel, dict]] = {}
        self._build()
        self.connection.state_changed.connect(self._on_state)
        self.connection.models_changed.connect(self._on_models)
        self.controller.changed.connect(self._on_phase)
        self.controller.progress.connect(lambda f: self.progress.setValue(int(f * 100)))
        self.controller.directions_changed.connect(self._build_sliders)
        self.controller.preview_shown.connect(self._on_preview)
        self.controller.faces_found.connect(self._show_faces)
        self._watch = QTimer(self)                  # ends the session if its document was closed
        self._watch.timeout.connect(self._check_document)
        self._watch.start(1000)
        self._on_phase(IDLE, "")
        self.connection.start()

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        v = QVBoxLayout(self)
        self.status = QLabel("Not connected")
        self.status.setWordWrap(True)
        v.addWidget(self.status)
        form = QFormLayout()
        self.model_box = QComboBox()
        self.model_box.currentIndexChanged.connect(self._on_model_chosen)
        form.addRow("Model", self.model_box)
        self.quality = QComboBox()
        self.quality.addItems([budget_label(b) for b in BUDGET_CHOICES])
        self.quality.setCurrentIndex(self.settings.budget_index())
        self.quality.setToolTip("Preview latency budget: the backend picks the best sub-generator that fits")
        self.quality.currentIndexChanged.connect(self._on_quality)
        form.addRow("Preview", self.quality)
        self.align = QCheckBox("Find and align the face")
        self.align.setChecked(self.settings.align_faces)
        self.align.setToolTip("Crop the face the way the model was trained, then blend the edit back into the "
                              "photo; off: project the layer or selection as it is")
        self.align.toggled.connect(self._on_align)
        form.addRow("", self.align)
        self.face_box = QComboBox()
        self.face_box.setToolTip("Several faces were found: the one to edit (projects again)")
        self.face_box.activated.connect(self._on_face_chosen)
        form.addRow("Face", self.face_box)
        self._face_row_label = form.labelForField(self.face_box)
        self._show_faces([], 0)
        v.addLayout(form)

        row = QHBoxLayout()
        self.project_button = QPushButton("Project")
        self.project_button.setToolTip("Invert the active layer (or the selection's bounds) into the model")
        self.project_button.clicked.connect(lambda: self.project())   # not clicked(bool)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(lambda: self.controller.cancel_projection())
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
        self.reset_button.clicked.connect(self.reset)
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Render at full quality into a new layer (one undo step)")
        self.apply_button.clicked.connect(self.apply)
        self.discard_button = QPushButton("Discard")
        self.discard_button.clicked.connect(lambda: self.controller.discard())   # not clicked(bool)
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
        def start():
            host = self.host_factory()
            self.controller.attach(self.connection.socket)
            self.controller.project(host, model=self.model_box.currentText() or "", steps=self.settings.steps,
                                    align=self.align.isChecked(), face=face)
        if face is None:
            self._show_faces([], 0)
        self._guarded("project", start)

    def apply(self) -> None:
        self._guarded("apply", lambda: self.controller.apply(self.feather.value()))

    def _guarded(self, what: str, action) -> None:
        """Run a button's action; whatever fails is a message here, never a traceback dialog."""
        try:
            action()
        except HostError as e:
            self._say(str(e), error=True)
        except Exception as e:
            log.exception("%s failed", what)
            self._say(f"Unexpected error: {type(e).__name__}: {e}", error=True)

    def reset(self) -> None:
        self.controller.reset()
        for name, (slider, label, d) in self.sliders.items():
            slider.blockSignals(True)
            slider.setValue(self._to_slider(d, self.controller.values.get(name, 0.0)))
            slider.blockSignals(False)
            label.setText(f"{self.controller.values.get(name, 0.0):+.2f}")

    def reconnect(self) -> None:
        s = Settings(**{**self.settings.__dict__, "address": self.address.text().strip(),
                        "executable": self.executable.text().strip(), "autostart": self.autostart.isChecked()})
        try:
            s.save(self.store)
        except ValueError as e:
            self._say(str(e), error=True)
            return
        self.settings.__dict__.update(s.__dict__)
        self.controller.discard()
        self.connection.start()

    def shutdown(self) -> None:
        """The editor is closing: end the session, stop a backend we started."""
        self._watch.stop()
        self.controller.discard()
        self.connection.stop()

    # ------------------------------------------------------------------ reactions

    def _say(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #c33" if error else "")

    def _on_state(self, state: str, message: str) -> None:
        self.status.setText(message)
        self.status.setStyleSheet(f"color: {STATE_COLOURS[state]}" if state in STATE_COLOURS else "")
        self.controller.attach(self.connection.socket if state == CONNECTED else None)
        self._enable()

    def _on_models(self, models: list, default: str) -> None:
        self.model_box.blockSignals(True)
        self.model_box.clear()
        names = [m["name"] for m in models]
        self.model_box.addItems(names)
        want = self.settings.model_among(names, default)
        if want in names:
            self.model_box.setCurrentIndex(names.index(want))
        self.model_box.blockSignals(False)

    def _on_model_chosen(self, _index: int) -> None:
        self.settings.model = self.model_box.currentText()
        self._save_later()

    def _on_align(self, checked: bool) -> None:
        self.settings.align_faces = bool(checked)
        self._save_later()

    def _show_faces(self, faces: list, chosen: int) -> None:
        """The face menu, shown when a projection found more than one face."""
        self.face_box.clear()
        self.face_box.addItems(face_menu(faces))
        if faces:
            self.face_box.setCurrentIndex(chosen)
        for widget in (self.face_box, self._face_row_label):
            if widget is not None:
                widget.setVisible(len(faces) > 1)

    def _on_face_chosen(self, index: int) -> None:
        if index >= 0 and self.controller.phase in (IDLE, EDITING):
            self.project(face=index)

    def _on_quality(self, index: int) -> None:
        self.settings.budget = BUDGET_CHOICES[index]
        self.controller.budget_ms = self.settings.budget_ms()
        self._save_later()

    def _save_later(self, *_):
        self.settings.feather = self.feather.value()
        try:
            self.settings.save(self.store)
        except ValueError as e:
            self._say(str(e), error=True)

    def _on_phase(self, phase: str, message: str) -> None:
        if message or phase == IDLE:
            self._say(message, error=self.controller.error)
        self.cancel_button.setVisible(phase == PROJECTING)
        self.progress.setVisible(phase in (PROJECTING, APPLYING))
        self._enable()

    def _on_preview(self, info: dict) -> None:
        cfg = info.get("config") or {}
        kind = "final quality" if cfg.get("full") else f"{cfg.get('ratio', 0):g}× channels, {cfg.get('resolution')} px"
        self.message.setStyleSheet("")
        self.message.setText(f"Preview: {kind}, {info.get('render_ms', 0):.0f} ms"
                             + (" (refined)" if info.get("refined") else ""))

    def _enable(self) -> None:
        phase, online = self.controller.phase, self.connection.connected
        self.project_button.setEnabled(online and phase in (IDLE, EDITING))
        editing = online and phase == EDITING
        for b in (self.reset_button, self.apply_button):
            b.setEnabled(editing)
        self.discard_button.setEnabled(phase in (EDITING, PROJECTING) or self.controller.session is not None)
        for slider, _, _ in self.sliders.values():
            slider.setEnabled(editing)
        self.model_box.setEnabled(phase == IDLE)
        self.face_box.setEnabled(online and phase in (IDLE, EDITING))

    def _check_document(self) -> None:
        c = self.controller
        if c.session is not None and c.host is not None and not c.host.alive():
            c.discard()
            self._say("The document was closed; its Anycost session was ended")

    # ------------------------------------------------------------------ sliders

    @staticmethod
    def _to_slider(d: dict, value: float) -> int:
        lo, hi = float(d["min"]), float(d["max"])
        return round((value - lo) / (hi - lo) * SLIDER_STEPS) if hi > lo else 0

    @staticmethod
    def _from_slider(d: dict, pos: int) -> float:
        lo, hi = float(d["min"]), float(d["max"])
        return lo + (hi - lo) * pos / SLIDER_STEPS

    def _build_sliders(self, directions: list) -> None:
        while self.slider_box.rowCount():
            self.slider_box.removeRow(0)
        self.sliders = {}
        for d in directions:
            row = QWidget()
            h = QHBoxLayout(row)
            h.setContentsMargins(0, 0, 0, 0)
            slider = QSlider(HORIZONTAL)
            slider.setRange(0, SLIDER_STEPS)
            slider.setValue(self._to_slider(d, float(d.get("default", 0.0))))
            label = QLabel(f"{float(d.get('default', 0.0)):+.2f}")
            label.setMinimumWidth(40)
            slider.valueChanged.connect(lambda pos, d=d, label=label: self._on_slider(d, pos, label))
            h.addWidget(slider)
            h.addWidget(label)
            self.slider_box.addRow(d["name"].replace("_", " ").capitalize(), row)
            self.sliders[d["name"]] = (slider, label, d)
        self._enable()

    def _on_slider(self, d: dict, pos: int, label: QLabel) -> None:
        value = self._from_slider(d, pos)
        label.setText(f"{value:+.2f}")
        try:
            self.controller.set_value(d["name"], value)
        except HostError as e:
            self._say(str(e), error=True)
