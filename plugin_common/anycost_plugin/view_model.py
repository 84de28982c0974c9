"""What an editor's Anycost panel shows and what its controls may do, without a widget in sight.

The Krita docker (anycost_krita.panel) and the GIMP dialog (anycost_gimp.gimp_dialog) build their
widgets and bind them to an `EditView`: its `enabled` flags, its `message`, its `sliders` (the
mapping between a slider's integer position and a direction's value), the model and face menus.
Every rule about what may be pressed when lives here once, with the connection and the edit
controller it drives. Errors arrive as a `Message` with the protocol's `ErrorCode` when the backend
sent one, never as a traceback.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from anycost.protocol.messages import DirectionInfo, ErrorCode, ModelInfo

from .connection import CONNECTED, Connection
from .controller import APPLYING, EDITING, IDLE, PROJECTING, EditController, Host, HostError, face_menu
from .events import Loop, Signal
from .settings import BUDGET_CHOICES, Settings

log = logging.getLogger("anycost_plugin")
SLIDER_STEPS = 200                # integer positions of a slider widget, minimum to maximum
DOCUMENT_CHECK_MS = 1000          # how often the open session's document is checked to be still open


@dataclass(frozen=True)
class Slider:
    """One direction as a slider: `label` for people, positions 0..SLIDER_STEPS over min..max."""
    name: str
    label: str
    lo: float
    hi: float
    default: float

    @classmethod
    def from_direction(cls, d: DirectionInfo) -> Slider:
        return cls(d.name, d.name.replace("_", " ").capitalize(), d.min, d.max, d.default)

    def position(self, value: float) -> int:
        return round((value - self.lo) / (self.hi - self.lo) * SLIDER_STEPS) if self.hi > self.lo else 0

    def value_at(self, position: int) -> float:
        return self.lo + (self.hi - self.lo) * position / SLIDER_STEPS

    @staticmethod
    def text(value: float) -> str:
        """The value as both editors print it beside the slider."""
        return f"{value:+.2f}"


@dataclass(frozen=True)
class Enabled:
    """Which controls may be used now (`cancel` and `progress` are shown only while true)."""
    project: bool
    cancel: bool
    reset: bool
    apply: bool
    discard: bool
    sliders: bool
    model: bool
    face: bool
    progress: bool
    ok: bool                          # a dialog's OK (GIMP): applies when editing, closes when idle


@dataclass(frozen=True)
class Message:
    """The line under the controls. `error`: shown as one; `code`: the backend's, when it sent one."""
    text: str = ""
    error: bool = False
    code: ErrorCode | None = None


class EditView:
    """Signals: `changed()` (status, message or what is enabled changed), `sliders_changed(sliders)`
    (a new session's directions, [] when it ends), `values_reset()` (sliders go back to their
    defaults), `faces_changed(labels, chosen)` (the face menu; shown only with two or more),
    `models_changed(names, chosen)`, `progress(0..1)`."""

    def __init__(self, settings: Settings, loop: Loop, log_dir: Path | None = None,
                 connection: Connection | None = None, save: Callable[[], None] | None = None):
        """`connection`: one made elsewhere (tests); `save`: called after a setting changed here."""
        self.settings = settings
        self.connection = connection or Connection(settings, loop, log_dir=log_dir)
        self.controller = EditController()
        self.controller.budget_ms = settings.budget_ms()
        self._save = save or (lambda: None)
        self.changed, self.sliders_changed, self.values_reset = Signal(), Signal(), Signal()
        self.faces_changed, self.models_changed, self.progress = Signal(), Signal(), Signal()
        self.sliders: list[Slider] = []
        self.message = Message()
        self.status = ""
        self.connection.state_changed.connect(self._on_state)
        self.connection.models_changed.connect(self._on_models)
        self.controller.changed.connect(self._on_phase)
        self.controller.progress.connect(self.progress.emit)
        self.controller.directions_changed.connect(self._on_directions)
        self.controller.preview_shown.connect(self._on_preview)
        self.controller.faces_found.connect(self._on_faces)
        self._document_check = loop.timer(self._check_document, repeat=True)

    # ------------------------------------------------------------------ what is shown

    @property
    def phase(self) -> str:
        return self.controller.phase

    @property
    def online(self) -> bool:
        return self.connection.connected

    @property
    def state(self) -> str:
        return self.connection.state

    @property
    def enabled(self) -> Enabled:
        phase, online = self.controller.phase, self.connection.connected
        editing = online and phase == EDITING
        return Enabled(project=online and phase in (IDLE, EDITING), cancel=phase == PROJECTING,
                       reset=editing, apply=editing,
                       discard=phase in (EDITING, PROJECTING) or self.controller.session is not None,
                       sliders=editing, model=phase == IDLE, face=online and phase in (IDLE, EDITING),
                       progress=phase in (PROJECTING, APPLYING), ok=phase in (IDLE, EDITING))

    def value(self, name: str) -> float:
        return self.controller.values.get(name, 0.0)

    # ------------------------------------------------------------------ actions

    def start(self) -> None:
        self.connection.start()
        self._document_check.start(DOCUMENT_CHECK_MS)

    def stop(self) -> None:
        """The editor closes the panel: end the session, stop a backend we started."""
        self._document_check.stop()
        self.controller.discard()
        self.connection.stop()

    def project(self, host: Host | Callable[[], Host], model: str = "", face: int | None = None) -> None:
        """Project the host's layer (`host` may be a function that finds it and raises HostError)."""
        if face is None:
            self._on_faces([], 0)

        def start() -> None:
            chosen = host() if callable(host) else host
            self.controller.attach(self.connection.socket)
            self.controller.project(chosen, model=model, steps=self.settings.steps,
                                    align=self.settings.align_faces, face=face)
        self._guarded("project", start)

    def choose_face(self, index: int, host: Host | Callable[[], Host], model: str = "") -> None:
        """Another face of the last projection's menu: projects again."""
        if index >= 0 and self.controller.phase in (IDLE, EDITING):
            self.project(host, model=model, face=index)

    def cancel(self) -> None:
        self.controller.cancel_projection()

    def move(self, name: str, position: int) -> float:
        """A slider moved to `position`: sends the edit; returns the value to print beside it."""
        slider = next(s for s in self.sliders if s.name == name)
        value = slider.value_at(position)
        self._guarded("edit", lambda: self.controller.set_value(name, value))
        return value

    def reset(self) -> None:
        self.controller.reset()
        self.values_reset.emit()

    def apply(self, feather: int) -> None:
        self._guarded("apply", lambda: self.controller.apply(feather))

    def discard(self) -> None:
        self.controller.discard()

    def choose_model(self, name: str) -> None:
        self.settings.model = name
        self._save()

    def choose_align(self, on: bool) -> None:
        self.settings.align_faces = bool(on)
        self._save()

    def choose_budget(self, index: int) -> None:
        self.settings.budget = BUDGET_CHOICES[index]
        self.controller.budget_ms = self.settings.budget_ms()
        self._save()

    def _guarded(self, what: str, action: Callable[[], None]) -> None:
        """Run a control's action: whatever fails is a message, never the editor's traceback dialog."""
        try:
            action()
        except HostError as e:
            self.say(str(e), error=True)
        except Exception as e:
            log.exception("%s failed", what)
            self.say(f"Unexpected error: {type(e).__name__}: {e}", error=True)

    def say(self, text: str, error: bool = False, code: ErrorCode | None = None) -> None:
        self.message = Message(text, error, code)
        self.changed.emit()

    # ------------------------------------------------------------------ reactions

    def _on_state(self, state: str, message: str) -> None:
        self.status = message
        self.controller.attach(self.connection.socket if state == CONNECTED else None)
        self.changed.emit()

    def _on_models(self, models: list[ModelInfo], default: str) -> None:
        names = [m.name for m in models]
        want = self.settings.model_among(names, default)
        self.models_changed.emit(names, names.index(want) if want in names else -1)

    def _on_phase(self, phase: str, message: str) -> None:
        if message or phase == IDLE:
            self.message = Message(message, self.controller.error, self.controller.error_code)
        self.changed.emit()

    def _on_directions(self, directions: list) -> None:
        self.sliders = [Slider.from_direction(d) for d in directions]
        self.sliders_changed.emit(self.sliders)
        self.changed.emit()

    def _on_preview(self, info: dict) -> None:
        cfg = info.get("config") or {}
        kind = "final quality" if cfg.get("full") else f"{cfg.get('ratio', 0):g}× channels, {cfg.get('resolution')} px"
        self.say(f"Preview: {kind}, {info.get('render_ms', 0):.0f} ms" + (" (refined)" if info.get("refined") else ""))

    def _on_faces(self, faces: list, chosen: int) -> None:
        self.faces_changed.emit(face_menu(faces), chosen)

    def _check_document(self) -> None:
        c = self.controller
        if c.session is not None and c.host is not None and not c.host.alive():
            c.discard()
            self.say("The document was closed; its Anycost session was ended")
