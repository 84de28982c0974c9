"""What the plugins' shared logic needs from an editor's event loop (Qt in Krita, GLib in GIMP),
and a plain-Python signal, so the same connection and editing code runs in both."""
from __future__ import annotations

from typing import Callable, Protocol


class Signal:
    """connect / disconnect / emit, like Qt's signals, without Qt."""

    def __init__(self):
        self._slots: list[Callable] = []

    def connect(self, slot: Callable) -> None:
        self._slots.append(slot)

    def disconnect(self, slot: Callable) -> None:
        if slot in self._slots:
            self._slots.remove(slot)

    def emit(self, *args) -> None:
        for slot in list(self._slots):
            slot(*args)


class Timer(Protocol):
    def start(self, ms: int) -> None: ...        # (re)start; fires once unless made repeating
    def stop(self) -> None: ...


class Watch(Protocol):
    def stop(self) -> None: ...


class Loop(Protocol):
    def timer(self, callback: Callable[[], None], repeat: bool = False) -> Timer: ...
    def watch_readable(self, fd: int, callback: Callable[[], None]) -> Watch: ...
