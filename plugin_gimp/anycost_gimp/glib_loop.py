"""The shared plugin logic's event-loop needs (anycost_plugin.events.Loop), met by GLib."""
from __future__ import annotations

from gi.repository import GLib


class GLibTimer:
    def __init__(self, callback, repeat: bool):
        self._callback, self._repeat, self._id = callback, repeat, None

    def start(self, ms: int) -> None:
        self.stop()
        self._id = GLib.timeout_add(max(0, int(ms)), self._fire)

    def stop(self) -> None:
        if self._id is not None:
            GLib.source_remove(self._id)
            self._id = None

    def _fire(self) -> bool:
        me = self._id
        if not self._repeat:
            self._id = None              # the callback may start() it again: a new source
        self._callback()
        return self._repeat and self._id == me


class GLibWatch:
    def __init__(self, fd: int, callback):
        self._callback = callback
        self._id = GLib.unix_fd_add_full(GLib.PRIORITY_DEFAULT, fd, GLib.IOCondition.IN, self._fire)

    def _fire(self, *_) -> bool:
        self._callback()
        return True

    def stop(self) -> None:
        if self._id is not None:
            GLib.source_remove(self._id)
            self._id = None


class GLibLoop:
    def timer(self, callback, repeat: bool = False) -> GLibTimer:
        return GLibTimer(callback, repeat)

    def watch_readable(self, fd: int, callback) -> GLibWatch:
        return GLibWatch(fd, callback)
