"""The connection to the backend as a small state machine, with the backend started on demand.

    DISCONNECTED -> CONNECTING -> CONNECTED            (a backend answered `hello` and is ready)
                        |  no answer, autostart on
                        v
                    STARTING -> CONNECTED              (our child answered; it dies with the editor)
                        |  child exited / too slow
                        v
    UNREACHABLE (with the reason; retried every few seconds)

While CONNECTED a heartbeat `hello` runs every few seconds; a missed one means the backend went
away: the state says so and the connection starts over (and restarts the backend if it was ours).
"""
from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from anycost.protocol import messages as P
from anycost.protocol.messages import BackendError, ErrorCode
from anycost.protocol.spawn import LaunchError, last_lines, start_backend, stop_backend

from .backend_socket import BackendSocket
from .events import Loop, Signal
from .settings import Settings

HELLO_IN_FLIGHT = 0        # request ids start at 1

DISCONNECTED, CONNECTING, STARTING, CONNECTED, UNREACHABLE = (
    "disconnected", "connecting", "starting", "connected", "unreachable")


class Connection:
    """`state_changed(state, message)`; `models_changed(models, default_model)` with the protocol's
    model records once connected."""

    def __init__(self, settings: Settings, loop: Loop, log_dir: Path | None = None, hello_timeout_s: float = 2.0,
                 heartbeat_s: float = 3.0, start_timeout_s: float = 180.0, retry_s: float = 5.0):
        self.state_changed, self.models_changed = Signal(), Signal()
        self.loop = loop
        self.settings = settings
        self.log_path = Path(log_dir or tempfile.gettempdir()) / "anycost-backend.log"
        self.hello_timeout_s, self.heartbeat_s = hello_timeout_s, heartbeat_s
        self.start_timeout_s, self.retry_s = start_timeout_s, retry_s
        self.state, self.message = DISCONNECTED, ""
        self.socket: BackendSocket | None = None
        self.models: list[P.ModelInfo] = []
        self.default_model = ""
        self.child: subprocess.Popen | None = None   # the backend we started, if any
        self._hello_id: int | None = None
        self._missed = 0                      # consecutive heartbeats without an answer
        self._deadline = loop.timer(self._hello_timed_out)
        self._tick = loop.timer(self._on_tick)   # heartbeat while connected, retries when unreachable

    # ------------------------------------------------------------------ public

    def start(self) -> None:
        """(Re)connect with the current settings."""
        self._tick.stop()
        if not self._new_socket():
            return
        self._set(CONNECTING, f"Connecting to {self.address}…")
        self._hello(self.hello_timeout_s)

    def stop(self) -> None:
        """Close the connection and stop the backend we started (the editor is closing)."""
        self._tick.stop()
        self._deadline.stop()
        if self.socket:
            self.socket.close()
            self.socket = None
        stop_backend(self.child)
        self.child = None
        self._set(DISCONNECTED, "Disconnected")

    @property
    def address(self) -> str:
        return self.settings.endpoint()

    @property
    def connected(self) -> bool:
        return self.state == CONNECTED

    # ------------------------------------------------------------------ machinery

    def _set(self, state: str, message: str) -> None:
        if (state, message) != (self.state, self.message):
            self.state, self.message = state, message
            self.state_changed.emit(state, message)

    def _new_socket(self) -> bool:
        """A fresh socket; False (and the reason shown) when the address must not be used."""
        if self.socket:
            self.socket.close()
            self.socket = None
        self._hello_id = None
        try:
            self.socket = BackendSocket(self.address, self.loop)
        except P.EndpointError as e:
            self._fail(str(e))
            return False
        return True

    def _hello(self, timeout_s: float) -> None:
        if self._hello_id is not None or self.socket is None:
            return
        # in flight before send(): it drains, so the answer may be handled before it returns
        self._hello_id = HELLO_IN_FLIGHT
        rid = self.socket.send("hello", {}, self._on_hello, self._on_error)
        if self._hello_id == HELLO_IN_FLIGHT:          # not answered yet: wait for it
            self._hello_id = rid
            self._deadline.start(int(timeout_s * 1000))

    def _on_hello(self, data: dict) -> None:
        self._deadline.stop()
        self._hello_id = None
        self._missed = 0
        if not P.Hello.from_dict(data).ready:          # calibrating: ask again shortly
            self._set(self.state if self.state == STARTING else CONNECTING,
                      "The backend is measuring its previews on this machine…")
            self._tick.start(500)
            return
        if self.state == CONNECTED:
            self._tick.start(int(self.heartbeat_s * 1000))
            return
        if self.socket is not None:
            self.socket.send("models", {}, self._on_models, self._on_error)

    def _on_models(self, data: dict) -> None:
        listed = P.ModelsResult.from_dict(data)
        self.models, self.default_model = list(listed.models), listed.default_model
        self._set(CONNECTED, f"Connected to {self.address}"
                             + (" (started by Krita)" if self.child is not None else ""))
        self.models_changed.emit(self.models, self.default_model)
        self._tick.start(int(self.heartbeat_s * 1000))

    def _on_error(self, err: BackendError) -> None:
        if err.code == ErrorCode.CLOSED:
            return
        self._deadline.stop()
        self._hello_id = None
        self._set(UNREACHABLE, f"The backend answered with an error: {err.message}")
        self._tick.start(int(self.retry_s * 1000))

    def _on_tick(self) -> None:
        if self.state == CONNECTED:
            self._hello(max(self.hello_timeout_s, self.heartbeat_s))
        elif self.state == STARTING:
            if self._check_child():
                self._hello(self._start_left())
        else:
            self.start()

    def _hello_timed_out(self) -> None:
        if self.socket is None:
            return
        self.socket.drain()                   # the answer may be waiting behind a busy event loop
        if self._hello_id is None:
            return
        self.socket.forget(self._hello_id)
        self._hello_id = None
        if self.state == CONNECTED:           # one missed heartbeat is not yet a lost backend
            self._missed += 1
            if self._missed < 2:
                self._hello(max(self.hello_timeout_s, self.heartbeat_s))
                return
        if self.state == STARTING:
            if self._check_child():
                self._fail(f"The backend did not become ready within {self.start_timeout_s:g} s "
                           f"(log: {self.log_path})")
            return
        lost = self.state == CONNECTED
        ours_dead = self.child is None or self.child.poll() is not None
        if self.settings.autostart and P.is_loopback(self.address) and ours_dead:
            self._launch(restarted=lost)
            return
        self._fail(("Lost the backend" if lost else "No backend answers") + f" at {self.address}; "
                   + ("retrying…" if not self.settings.autostart else "it is not on this machine, retrying…"))

    def _launch(self, restarted: bool) -> None:
        try:
            self.child = start_backend(self.address, executable=self.settings.executable, log=self.log_path,
                                       for_editor=True)
        except LaunchError as e:
            self._fail(str(e))
            return
        self._started_at = time.monotonic()
        if not self._new_socket():            # a fresh socket: nothing stale queued for the new backend
            return
        self._set(STARTING, ("Lost the backend; restarting it…" if restarted else "Starting the backend…"))
        self._hello(self._start_left())
        self._tick.start(1000)

    def _start_left(self) -> float:
        return max(0.5, self.start_timeout_s - (time.monotonic() - self._started_at))

    def _check_child(self) -> bool:
        """While STARTING: is our child still alive? If not, say why (from its log)."""
        if self.child is not None and self.child.poll() is None:
            if self._hello_id is not None:
                self._tick.start(1000)        # keep watching it while the hello waits
            return True
        code = self.child.returncode if self.child is not None else None
        self.child = None
        self._fail(f"The backend exited (code {code}) before it was ready: {last_lines(self.log_path)}")
        return False

    def _fail(self, message: str) -> None:
        self._deadline.stop()
        self._set(UNREACHABLE, message)
        self._tick.start(int(self.retry_s * 1000))
