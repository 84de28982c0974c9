"""The shared plugin logic's event-loop needs (anycost_plugin.events.Loop), met by Qt."""
from __future__ import annotations

from .qt import READ, QSocketNotifier, QTimer


class QtTimer:
    def __init__(self, callback, repeat: bool):
        self._t = QTimer()
        self._t.setSingleShot(not repeat)
        self._t.timeout.connect(callback)

    def start(self, ms: int) -> None:
        self._t.start(int(ms))

    def stop(self) -> None:
        self._t.stop()


class QtWatch:
    def __init__(self, fd: int, callback):
        self._n = QSocketNotifier(fd, READ)  # type: ignore[arg-type]  # PyQt takes the fd (an int) as its voidptr
        self._n.activated.connect(lambda *_: callback())

    def stop(self) -> None:
        self._n.setEnabled(False)


class QtLoop:
    def timer(self, callback, repeat: bool = False) -> QtTimer:
        return QtTimer(callback, repeat)

    def watch_readable(self, fd: int, callback) -> QtWatch:
        return QtWatch(fd, callback)
