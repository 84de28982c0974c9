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
import logging.handlers
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from anycost.protocol.messages import DirectionInfo, ErrorCode, ModelInfo

from .connection import CONNECTED, Connection
from .controller import APPLYING, EDITING, IDLE, PROJECTING, EditController, Host, HostError, face_menu
from .diagnostics import DiagnosticsRun, plugin_info
from .events import Loop, Signal
from .names import direction_label
from .settings import BUDGET_CHOICES, Settings

log = logging.getLogger("anycost_plugin")
SLIDER_STEPS = 200                # integer positions of a slider widget, minimum to maximum
DOCUMENT_CHECK_MS = 1000          # how often the open session's document is checked to be still open


@dataclass(frozen=True)
class Slider:
    """One direction as a slider: `label` and `tip` for people, positions 0..SLIDER_STEPS over
    min..max, a centre mark at `default` (the photo as projected)."""
    name: str
    label: str
    lo: float
    hi: float
    default: float
    tip: str = ""

    @classmethod
    def from_direction(cls, d: DirectionInfo) -> Slider:
        label, tip = direction_label(d.name, d.source)
        return cls(d.name, label, d.min, d.max, d.default,
                   f"{tip}. Double-click or ↺ resets it to {Slider.text(d.default)}.")

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
    compare: bool                     # the before/after toggle


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
                 connection: Connection | None = None, save: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        """`connection`: one made elsewhere (tests); `save`: called after a setting changed here;
        `clock`: seconds, for the projection's time estimate."""
        self.settings = settings
        self.clock = clock
        self.loop = loop
        self.log_dir = log_dir
        self.plugin_log = _log_to_file(log_dir) if log_dir is not None else None
        self._diagnostics: DiagnosticsRun | None = None
        self._projection_started: float | None = None
        self.projection_text = ""             # "Projecting … about 12 s left", for the progress bar
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
        self.controller.progress.connect(self._on_progress)
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
                       progress=phase in (PROJECTING, APPLYING), ok=phase in (IDLE, EDITING), compare=editing)

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

    def reset(self, name: str | None = None) -> None:
        """Every slider back to its centre mark (or only the one named: a double-click, its ↺)."""
        self._guarded("reset", lambda: self.controller.reset(name))
        self.values_reset.emit()

    def show_original(self, on: bool) -> None:
        """The before/after toggle: True shows the document without the edit."""
        self._guarded("compare", lambda: self.controller.show_original(bool(on)))
        self.changed.emit()

    def diagnose(self, editor: str, out: Path | None = None) -> None:
        """The Diagnostics button: a zip for a support request (see anycost_plugin.diagnostics)."""
        if self._diagnostics is not None:
            return
        logs = [p for p in (self.plugin_log, getattr(self.connection, "log_path", None)) if p is not None]
        info = plugin_info(editor, self.settings, self.connection.state, self.connection.message, logs)

        def done(text: str, error: bool) -> None:
            self._diagnostics = None
            self.say(text, error=error)
        self.say("Writing the diagnostics zip…")
        self._diagnostics = DiagnosticsRun(self.loop, info, self.settings, done, out)
        self._guarded("diagnose", self._diagnostics.start)

    def document_changed(self) -> None:
        """The editor switched documents: a message about another one is stale (a session stays
        with its own document)."""
        if self.controller.session is None and self.controller.phase == IDLE:
            self.say("")

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
        if error:
            log.warning("shown: %s (code %s)", text, code)
        self.message = Message(text, error, code)
        self.changed.emit()

    # ------------------------------------------------------------------ reactions

    def _on_state(self, state: str, message: str) -> None:
        log.info("connection: %s: %s", state, message)
        self.status = message
        self.controller.attach(self.connection.socket if state == CONNECTED else None)
        self.changed.emit()

    def _on_models(self, models: list[ModelInfo], default: str) -> None:
        names = [m.name for m in models]
        want = self.settings.model_among(names, default)
        self.models_changed.emit(names, names.index(want) if want in names else -1)

    def _on_progress(self, fraction: float) -> None:
        """Progress, and during a projection the time left, estimated from the steps so far."""
        if self.controller.phase == PROJECTING:
            now = self.clock()
            if self._projection_started is None or fraction <= 0.0:
                self._projection_started = now
                self.projection_text = "Projecting…"
            elif fraction >= 0.05:
                left = (now - self._projection_started) * (1.0 - fraction) / fraction
                self.projection_text = f"Projecting: {fraction:.0%}, about {_duration(left)} left"
        else:
            self._projection_started = None
            self.projection_text = ""
        self.progress.emit(fraction)

    def _on_phase(self, phase: str, message: str) -> None:
        if phase != PROJECTING:
            self._projection_started, self.projection_text = None, ""
        if message or phase == IDLE:
            if self.controller.error:
                log.warning("%s: %s (code %s)", phase, message, self.controller.error_code)
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


def _log_to_file(folder: Path) -> Path | None:
    """The plugin's own log (what it showed and its connection's states), for diagnostics."""
    path = Path(folder) / "anycost-plugin.log"
    if any(getattr(h, "baseFilename", None) == str(path) for h in log.handlers):
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=1 << 20, backupCount=1, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return path


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
