"""A small synchronous client for anycost-backend (DEALER socket). Imports only pyzmq and msgpack.

Used by the CLI (`status`, `demo`, `bench --e2e`) and the tests; the editor plugins wrap the same
protocol in their hosts' event loops.
"""
from __future__ import annotations

import itertools
import subprocess
import time
from typing import Callable

import zmq

from anycost.protocol import messages as P


class BackendTimeout(P.BackendError):
    """No reply within the time limit (no backend at the address, or it is stuck): code UNREACHABLE."""

    def __init__(self, message: str):
        super().__init__(P.ErrorCode.UNREACHABLE, message)


class Client:
    def __init__(self, address: str | None = None, context: zmq.Context | None = None,
                 curve_server_key: bytes | None = None, curve_keypair: tuple[bytes, bytes] | None = None):
        """`address` None: the default endpoint (`protocol.default_address`). An `ipc://` socket in a
        folder that is not private to this user is refused (EndpointError) before connecting."""
        self.address = address = address or P.default_address()
        P.check_endpoint(address)
        self._ctx = context or zmq.Context.instance()
        self.socket = self._ctx.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if curve_server_key is not None:
            public, secret = curve_keypair or zmq.curve_keypair()
            self.socket.curve_serverkey = curve_server_key
            self.socket.curve_publickey = public
            self.socket.curve_secretkey = secret
        self.socket.connect(address)
        self._ids = itertools.count(1)
        self.unsolicited: list[dict] = []   # `refined` previews and replies to other requests

    def close(self) -> None:
        self.socket.close(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ raw messages

    def send(self, op: str, **fields) -> int:
        rid = next(self._ids)
        self.socket.send(P.pack(P.request(op, rid, **fields)))
        return rid

    def send_raw(self, frame: bytes) -> None:
        self.socket.send(frame)

    def recv(self, timeout: float = 30.0) -> dict:
        if not self.socket.poll(int(timeout * 1000)):
            raise BackendTimeout(f"no reply from {self.address} within {timeout:g} s")
        return P.unpack(self.socket.recv())

    # ------------------------------------------------------------------ request/reply

    def wait(self, rid: int, timeout: float = 60.0,
             on_progress: Callable[[dict], None] | None = None) -> dict:
        """Receive until the final reply of `rid`; returns its `data`, or raises protocol.BackendError
        (BackendTimeout when nothing arrives in time)."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.0, deadline - time.monotonic()))
            if msg.get("id") != rid or msg.get("type") == P.REFINED:
                self.unsolicited.append(msg)
                continue
            kind = msg.get("type")
            if kind == P.PROGRESS:
                if on_progress:
                    on_progress(msg)
                continue
            if kind == P.ERROR:
                raise P.BackendError.from_reply(msg)
            return msg.get("data") or {}

    def call(self, op: str, timeout: float = 60.0, on_progress=None, **fields) -> dict:
        return self.wait(self.send(op, **fields), timeout, on_progress)

    def wait_ready(self, timeout: float = 120.0, proc: subprocess.Popen | None = None,
                   poll_s: float = 0.2) -> P.Hello:
        """Ask `hello` until the daemon says "ready" (it measures its previews first); returns the
        hello record. The one blocking wait for a daemon (the CLI, the one-shot plugin path, tests).
        BackendTimeout when none is ready within `timeout`; BackendError (UNREACHABLE) as soon as
        `proc`, the daemon's process if we started it, has exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise P.BackendError(P.ErrorCode.UNREACHABLE,
                                     f"the daemon exited with code {proc.returncode} before it was ready")
            try:
                hello = P.Hello.from_dict(self.call("hello", timeout=min(2.0, max(0.1, deadline - time.monotonic()))))
            except BackendTimeout:
                continue
            if hello.ready:
                return hello
            time.sleep(poll_s)
        raise BackendTimeout(f"no ready daemon on {self.address} after {timeout:g} s")
