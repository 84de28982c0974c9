"""Stand-ins for the plugins' surroundings, without Qt or GLib: an in-memory Host (a canvas of
bytes) for a document, a socket whose requests the test answers (a scripted client), a loop with a
manual clock, and a connection that is connected when told."""
from __future__ import annotations

from anycost.protocol import messages as P
from anycost_plugin.connection import CONNECTED, DISCONNECTED
from anycost_plugin.events import Signal


class MemoryHost:
    """A document of one RGB layer held in memory; records what the controller does to it."""

    def __init__(self, rgba: bytes, w: int, h: int, region=None):
        self.rgba, self.w, self.h = rgba, w, h
        self.source_region = self.region = region or (0, 0, w, h)
        self.preview: bytes | None = None
        self.previews = 0
        self.applied: list[tuple] = []
        self.open = True
        self.broken = False           # e.g. the user deleted the layer under the preview

    def source(self):
        x, y, w, h = self.source_region
        rows = [self.rgba[((y + r) * self.w + x) * 4:((y + r) * self.w + x + w) * 4] for r in range(h)]
        return {"w": w, "h": h, "mode": "RGBA8", "data": b"".join(rows)}, self.source_region

    def show_preview(self, rgb, w, h):
        assert len(rgb) == w * h * 3 and (w, h) == self.region[2:]
        if self.broken:
            raise RuntimeError("the preview layer is gone")
        self.preview = rgb
        self.previews += 1

    def remove_preview(self):
        self.preview = None

    def apply(self, rgb, w, h, feather, name):
        self.preview = None
        self.applied.append((rgb, w, h, feather, name, self.region))

    def alive(self):
        return self.open


class RecordingSocket:
    """Stands in for BackendSocket: records each request; the test answers them in any order. As
    the real socket does, it drops the replies of a request that was forgotten."""

    def __init__(self):
        self.refined, self.failed = Signal(), Signal()
        self.sent: list[tuple] = []
        self.forgotten: set[int] = set()
        self.on_progress: dict[int, object] = {}

    def send(self, op, fields, on_result, on_error, on_progress=None) -> int:
        self.sent.append((op, fields, on_result, on_error))
        if on_progress is not None:
            self.on_progress[len(self.sent)] = on_progress
        return len(self.sent)

    def progress(self, rid, data):
        if rid not in self.forgotten:
            self.on_progress[rid](data)

    def forget(self, rid):
        self.forgotten.add(rid)

    def answer(self, rid, data):
        if rid not in self.forgotten:
            self.sent[rid - 1][2](data)

    def last(self, op) -> int:
        return next(i + 1 for i in range(len(self.sent) - 1, -1, -1) if self.sent[i][0] == op)

    def fail(self, rid, code, message=""):
        from anycost.protocol.messages import BackendError
        if rid not in self.forgotten:
            self.sent[rid - 1][3](BackendError(code, message))


class _Timer:
    def __init__(self, loop, callback, repeat):
        self.loop, self.callback, self.repeat, self.due, self.interval = loop, callback, repeat, None, 0

    def start(self, ms):
        self.interval, self.due = ms, self.loop.now_ms + ms

    def stop(self):
        self.due = None


class _Watch:
    def stop(self):
        pass


class ManualLoop:
    """events.Loop whose time moves only when the test calls `advance`."""

    def __init__(self):
        self.now_ms = 0
        self.timers: list[_Timer] = []

    def timer(self, callback, repeat=False):
        t = _Timer(self, callback, repeat)
        self.timers.append(t)
        return t

    def watch_readable(self, fd, callback):
        return _Watch()

    def advance(self, ms):
        """Fire every timer that falls due within the next `ms`, in order."""
        end = self.now_ms + ms
        while True:
            due = [t for t in self.timers if t.due is not None and t.due <= end]
            if not due:
                break
            t = min(due, key=lambda t: t.due)
            self.now_ms = t.due
            t.due = self.now_ms + t.interval if t.repeat else None
            t.callback()
        self.now_ms = end


class ScriptedConnection:
    """connection.Connection's face (signals, state, socket) over a RecordingSocket."""

    def __init__(self, models=("tiny",), default="tiny"):
        self.state_changed, self.models_changed = Signal(), Signal()
        self.state, self.message, self.socket = DISCONNECTED, "", None
        self.models = [P.ModelInfo(n, 64) for n in models]
        self.default_model = default

    @property
    def connected(self):
        return self.state == CONNECTED

    def start(self):
        self.socket = RecordingSocket()
        self.state = CONNECTED
        self.state_changed.emit(CONNECTED, "Connected to a scripted backend")
        self.models_changed.emit(self.models, self.default_model)

    def drop(self):
        self.socket, self.state = None, DISCONNECTED
        self.state_changed.emit(DISCONNECTED, "Disconnected")

    def stop(self):
        self.drop()
