"""The backend's protocol inside the editor's event loop: a DEALER socket whose readiness the loop
reports (Qt's QSocketNotifier, GLib's io watch), so nothing ever blocks the UI. Requests are
matched to callbacks by id."""
from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from typing import Callable

import zmq

from anycost.protocol import messages as P  # the backend's own module (vendored by install-plugin)
from anycost.protocol.messages import BackendError, ErrorCode

from .events import Loop, Signal

log = logging.getLogger("anycost_plugin")


@dataclass
class _Pending:
    rid: int
    op: str
    on_result: Callable[[dict], None]
    on_error: Callable[[BackendError], None]
    on_progress: Callable[[dict], None] | None


class BackendSocket:
    """One DEALER connection. `refined` carries the unasked better previews of `edit` (id, data);
    `failed` says that a reply handler raised (shown as a message, and logged)."""

    def __init__(self, address: str, loop: Loop, context: zmq.Context | None = None):
        self.refined, self.failed = Signal(), Signal()
        self.address = address
        P.check_endpoint(address)            # EndpointError: a socket folder another user controls
        self._sock = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(address)
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        # the FD is edge-triggered: drain everything on each notification, and once at start
        self._watch = loop.watch_readable(self._sock.getsockopt(zmq.FD), self.drain)
        self._safety = loop.timer(self.drain, repeat=True)   # an edge can be consumed by our own calls
        self._safety.start(100)
        self._closed = False

    def send(self, op: str, fields: dict, on_result, on_error, on_progress=None) -> int:
        if self._closed:
            raise BackendError(ErrorCode.CLOSED, "the connection to the backend is closed")
        rid = next(self._ids)
        self._pending[rid] = _Pending(rid, op, on_result, on_error, on_progress)
        try:
            self._sock.send(P.pack(P.request(op, rid, **fields)), zmq.NOBLOCK)
        except zmq.ZMQError as e:            # the outgoing queue is full: the backend is not reading
            del self._pending[rid]
            on_error(BackendError(ErrorCode.UNREACHABLE, f"cannot send to {self.address}: {e}"))
            return rid
        self.drain()
        return rid

    def forget(self, rid: int) -> None:
        """Stop listening to a request (its replies, if any, are dropped)."""
        self._pending.pop(rid, None)

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def close(self, wait_s: float = 1.0) -> None:
        """Close the socket; first wait (up to `wait_s`) for the answers to `close`/`cancel`
        requests, so that an editor quitting right after ending a session does not leak it."""
        if self._closed:
            return
        deadline = time.monotonic() + wait_s
        while any(p.op in ("close", "cancel") for p in self._pending.values()):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self._sock.poll(int(left * 1000)):
                self.drain()
        self._closed = True
        self._safety.stop()
        self._watch.stop()
        self._sock.close(0)
        pending, self._pending = self._pending, {}
        for p in pending.values():
            p.on_error(BackendError(ErrorCode.CLOSED, "the connection to the backend was closed"))

    def drain(self, *_) -> None:
        """Handle every reply that has arrived (also called when a deadline fires, so that a
        stalled event loop does not make an arrived reply look late)."""
        while not self._closed and self._sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            try:
                msg = P.unpack(self._sock.recv(zmq.NOBLOCK))
            except zmq.Again:
                return
            except P.ProtocolError:
                continue                             # not our protocol: nothing to match it to
            self._dispatch(msg)

    def _dispatch(self, msg: dict) -> None:
        try:
            self._deliver(msg)
        except Exception as e:                       # a bug must not become Krita's traceback dialog
            log.exception("handling a backend reply failed")
            self.failed.emit(f"{type(e).__name__}: {e}")

    def _deliver(self, msg: dict) -> None:
        rid, kind = msg.get("id"), msg.get("type")
        if kind == P.REFINED:
            self.refined.emit(rid, msg.get("data") or {})
            return
        p = self._pending.get(rid) if isinstance(rid, int) else None
        if p is None:
            return
        if kind == P.PROGRESS:
            if p.on_progress:
                p.on_progress(msg.get("data") or {})
            return
        del self._pending[p.rid]
        if kind == P.ERROR:
            p.on_error(BackendError.from_reply(msg))
        else:
            p.on_result(msg.get("data") or {})
