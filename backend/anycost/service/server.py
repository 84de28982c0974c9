"""The ZeroMQ front of the daemon: one I/O thread (ROUTER socket) and one compute worker.

The I/O thread answers cheap ops at once (hello, models, stats, cancel, close, shutdown) and queues
the heavy ones (open, edit, render). The worker serves clients round-robin, one job at a time;
for each session only the newest pending edit is rendered (older ones are answered `superseded`),
and once a session has been quiet for `refine_delay_s` it sends, unasked, a better preview.
"""
from __future__ import annotations

import collections
import logging
import os
import statistics
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import zmq

from anycost import __version__
from anycost.core.memory import give_back_freed_memory, rss_bytes
from anycost.core.timing import p95
from anycost.protocol import messages as P
from anycost.service.engine import Engine, Job

log = logging.getLogger("anycost.backend")

COMPUTE_OPS = ("open", "edit", "render")     # queued for the worker; each is the Engine method of that name
OUTBOX = "inproc://anycost-outbox"
# A job that leaves the process this much larger than before it (an 8192 px render) has its freed
# memory given back once the worker is idle: at these delays, since the reply's buffers are freed
# only when the socket has written them. Previews (edits up to PREVIEW_PIXELS, refined ones too)
# keep their memory whatever its size: that reuse is what keep_freed_memory is for.
TRIM_ABOVE_BYTES = 256 << 20
TRIM_DELAYS_S = (0.3, 1.5, 4.0)
PREVIEW_PIXELS = 2048 * 2048


class BindError(Exception):
    pass


class Server:
    def __init__(self, engine: Engine, bind: str, curve: dict | None = None, max_queue: int = 256,
                 refine_delay_s: float = 0.35, max_message_bytes: int | None = None, threads: int = 1,
                 give_back_memory: bool = True):
        self.engine = engine
        self.bind = bind
        self.curve = curve
        self.max_queue = max_queue
        self.refine_delay_s = refine_delay_s
        self.max_message_bytes = max_message_bytes or 2 * 4 * engine.max_pixels + (1 << 20)
        self.threads = threads
        self.ctx = zmq.Context()
        self.stopping = threading.Event()
        self.failure: str | None = None      # why the worker stopped, when an error stopped it
        self.started = time.time()
        # scheduler state, guarded by `cond`
        self.cond = threading.Condition()
        self.queues: collections.OrderedDict[bytes, collections.deque[Job]] = collections.OrderedDict()
        self.running: Job | None = None
        self.refine_due: dict[str, tuple[float, Job]] = {}
        # figures for `stats`
        self.counts: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self._count_lock = threading.Lock()        # errors are counted by the I/O thread and the worker
        self._trims: list[float] = []              # monotonic times of the next memory give-backs
        self.give_back_memory = give_back_memory
        self.edit_ms: collections.deque[float] = collections.deque(maxlen=1000)
        self._auth: Any = None                     # zmq.auth's ThreadAuthenticator with CURVE
        self._socket_file: tuple[Path, int] | None = None   # (path, inode) of an ipc:// socket we bound

    # ------------------------------------------------------------------ lifecycle

    def open_socket(self) -> None:
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
        # ROUTER_HANDOVER stays off: a second connection that claims a routing id already in use
        # is ignored, so no client can take over another's replies by copying its id.
        if self.curve:
            from zmq.auth.thread import ThreadAuthenticator
            self._auth = ThreadAuthenticator(self.ctx)
            self._auth.start()
            self._auth.configure_curve(domain="*", location=str(self.curve["authorized"]))
            self.router.curve_server = True
            self.router.curve_publickey = self.curve["public"]
            self.router.curve_secretkey = self.curve["secret"]
        try:
            if P.ipc_path(self.bind) is not None:
                self._bind_ipc()
            else:
                self.router.bind(self.bind)
        except zmq.ZMQError as e:
            self.router.close(0)
            if e.errno == zmq.EADDRINUSE:
                raise self._in_use() from None
            raise BindError(f"cannot bind {self.bind}: {e}") from None
        except (BindError, P.EndpointError) as e:
            self.router.close(0)
            raise BindError(str(e)) from None
        self.outbox = self.ctx.socket(zmq.PULL)
        self.outbox.bind(OUTBOX)

    def _in_use(self) -> BindError:
        return BindError(f"{self.bind} is already in use (another anycost-backend? "
                         f"`anycost-backend status --address {self.bind}` tells)")

    def _bind_ipc(self) -> None:
        """A Unix socket in a folder only this user can enter, the socket itself 0600. Binding
        replaces any socket file there, so first make sure no daemon still answers on it."""
        path = P.ipc_path(self.bind)
        assert path is not None, self.bind                  # called for ipc:// addresses only
        P.check_endpoint(self.bind, create=True)
        if path.exists() and _answers(self.ctx, self.bind):
            raise self._in_use()
        old = os.umask(0o177)
        try:
            self.router.bind(self.bind)
        finally:
            os.umask(old)
        self._socket_file = (path, os.stat(path).st_ino)

    def _remove_socket_file(self) -> None:
        """On exit, the socket file goes too, unless another daemon has bound that path since."""
        if self._socket_file is None:
            return
        path, inode = self._socket_file
        try:
            if os.stat(path).st_ino == inode:
                path.unlink()
        except OSError:
            pass

    def serve_forever(self) -> None:
        worker = threading.Thread(target=self._worker, name="anycost-worker", daemon=True)
        worker.start()
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.outbox, zmq.POLLIN)
        try:
            while not self.stopping.is_set():
                events = dict(poller.poll(200))
                if self.outbox in events:
                    while True:
                        try:
                            self.router.send_multipart(self.outbox.recv_multipart(zmq.NOBLOCK))
                        except zmq.Again:
                            break
                if self.router in events:
                    while True:
                        try:
                            frames = self.router.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._handle(frames)
        finally:
            self.stopping.set()
            with self.cond:
                if self.running is not None:
                    self.running.cancel.set()
                self.cond.notify_all()
            worker.join(timeout=10)
            self._flush_outbox()
            self.router.close(0)
            self._remove_socket_file()
            self.outbox.close(0)
            if self._auth:
                self._auth.stop()
            self.ctx.term()

    def stop(self) -> None:
        self.stopping.set()

    def _flush_outbox(self) -> None:
        while True:
            try:
                self.router.send_multipart(self.outbox.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                return

    # ------------------------------------------------------------------ I/O thread

    def _send(self, identity: bytes, msg: dict) -> None:
        self.router.send_multipart([identity, P.pack(msg)])

    def _count_error(self, code: P.ErrorCode) -> None:
        with self._count_lock:
            self.errors[P.ErrorCode(code).value] += 1     # stats' keys: the codes as the wire spells them

    def _send_error(self, identity: bytes, rid, code: P.ErrorCode, message: str) -> None:
        """Every error reply the I/O thread sends goes through here, so `stats` counts them all."""
        self._count_error(code)
        self._send(identity, P.error_reply(rid, code, message))

    def _handle(self, frames: list[bytes]) -> None:
        identity, payload = frames[0], frames[1:]
        rid = None
        try:
            if len(payload) != 1:
                raise P.ProtocolError(P.ErrorCode.BAD_REQUEST, f"expected one frame per message, got {len(payload)}")
            msg = P.unpack(payload[0])
            rid = P.request_id(msg)
            rid, op = P.check_envelope(msg)
            self.counts[op] += 1
            if op in COMPUTE_OPS:
                self._enqueue(Job(identity, rid, op, msg,
                                  session=msg.get("session") if isinstance(msg.get("session"), str) else None))
                return
            self._send(identity, P.reply(rid, P.RESULT, op=op, data=getattr(self, f"_op_{op}")(identity, msg)))
        except P.ProtocolError as e:
            self._send_error(identity, rid, e.code, e.message)
        except Exception as e:  # a bug must not take the daemon down for everyone
            log.exception("internal error")
            self._send_error(identity, rid, P.ErrorCode.INTERNAL, f"{type(e).__name__}: {e}")

    def _op_hello(self, identity, msg) -> dict:
        e = self.engine
        warnings = [e.perceptual.warning] if e.perceptual.warning else []
        warnings += [f"model {n} is untrained (random weights)" for n, m in e.models.items()
                     if m.model.metadata.get("untrained")]
        return P.Hello(__version__, P.VERSION, "ready" if e.ready.is_set() else "calibrating", tuple(e.models),
                       e.default_model, e.perceptual.name, tuple(warnings), str(e.device), self.threads,
                       {"max_image_pixels": e.max_pixels, "max_message_bytes": self.max_message_bytes,
                        "max_sessions": e.sessions.max_sessions, "max_queue": self.max_queue}).to_dict()

    def _op_models(self, identity, msg) -> dict:
        return P.ModelsResult(tuple(m.describe() for m in self.engine.models.values()),
                              self.engine.default_model).to_dict()

    def _op_stats(self, identity, msg) -> dict:
        ms = list(self.edit_ms)
        with self.cond:
            queued = sum(len(q) for q in self.queues.values())
            running = self.running.op if self.running else None
        with self._count_lock:
            errors = dict(self.errors)
        return P.Stats(round(time.time() - self.started, 1), dict(self.counts), errors, queued, running,
                       self.engine.sessions.count(),
                       {"n": len(ms), "median": round(statistics.median(ms), 2) if ms else None,
                        "p95": round(p95(ms), 2) if ms else None}).to_dict()

    def _op_cancel(self, identity, msg) -> dict:
        target = P.CancelRequest.from_message(msg).target
        with self.cond:
            q = self.queues.get(identity) or collections.deque()
            for job in list(q):
                if job.id == target:
                    q.remove(job)
                    self._send_error(identity, job.id, P.ErrorCode.CANCELLED, "cancelled before it started")
                    return P.CancelResult(target, "pending", True).to_dict()
            if self.running is not None and self.running.identity == identity and self.running.id == target:
                self.running.cancel.set()
                return P.CancelResult(target, "running", True).to_dict()
        return P.CancelResult(target, "unknown", False).to_dict()

    def _op_close(self, identity, msg) -> dict:
        sid = P.CloseRequest.from_message(msg).session
        with self.cond:
            self.refine_due.pop(sid, None)
        self.engine.sessions.close(sid)
        return P.CloseResult(sid).to_dict()

    def _op_shutdown(self, identity, msg) -> dict:
        self.stopping.set()
        return P.ShutdownResult().to_dict()

    def _enqueue(self, job: Job) -> None:
        with self.cond:
            if sum(len(q) for q in self.queues.values()) >= self.max_queue:
                raise P.ProtocolError(P.ErrorCode.BUSY, f"the queue is full ({self.max_queue} requests); try again")
            if job.op == "edit" and job.session:
                self.refine_due.pop(job.session, None)
                for ident, q in self.queues.items():      # latest wins: drop older edits of this session
                    for old in [j for j in q if j.op == "edit" and j.session == job.session]:
                        q.remove(old)
                        self._send_error(ident, old.id, P.ErrorCode.SUPERSEDED,
                                         f"replaced by request {job.id!r} of the same session")
            self.queues.setdefault(job.identity, collections.deque()).append(job)
            self.cond.notify_all()

    # ------------------------------------------------------------------ worker thread

    def _next_job(self) -> Job | None:
        """Round-robin over clients: take the oldest job of the first client, move it to the back."""
        for ident in list(self.queues):
            q = self.queues[ident]
            if q:
                job = q.popleft()
                self.queues.move_to_end(ident)
                return job
            del self.queues[ident]
        return None

    def _due_refine(self) -> tuple[Job | None, float | None]:
        now = time.monotonic()
        soonest = None
        for sid, (due, job) in list(self.refine_due.items()):
            if due <= now:
                del self.refine_due[sid]
                return job, None
            soonest = due if soonest is None else min(soonest, due)
        return None, (soonest - now if soonest is not None else None)

    def _worker(self) -> None:
        push = self.ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 1000)
        push.connect(OUTBOX)
        try:
            self.engine.calibrate_all()
            log.info("ready: %s", ", ".join(self.engine.models))
            while not self.stopping.is_set():
                with self.cond:
                    job, refine = self._next_job(), False
                    if job is None:
                        job, wait = self._due_refine()
                        refine = job is not None
                        if job is None:
                            self._maybe_trim()
                            waits = [0.5] + ([wait] if wait is not None else []) + \
                                    [t - time.monotonic() for t in self._trims[:1]]
                            self.cond.wait(max(0.0, min(waits)))
                            continue
                    self.running = job
                before = rss_bytes()
                try:
                    pixels = self._execute(job, refine, push)
                finally:
                    with self.cond:
                        self.running = None
                after = rss_bytes()
                preview = job.op == "edit" and pixels <= PREVIEW_PIXELS
                if self.give_back_memory and not preview and before is not None and after is not None \
                        and after - before > TRIM_ABOVE_BYTES:
                    done = time.monotonic()
                    self._trims = [done + d for d in TRIM_DELAYS_S]
        except Exception as e:
            log.exception("worker stopped by an error")
            self.failure = f"{type(e).__name__}: {e}"
            self.stopping.set()
        finally:
            push.close()

    def _maybe_trim(self) -> None:
        """Give freed memory back once each due time of the last big job has passed (worker idle)."""
        if self._trims and self._trims[0] <= time.monotonic():
            while self._trims and self._trims[0] <= time.monotonic():
                self._trims.pop(0)
            give_back_freed_memory()
            log.debug("gave freed memory back: RSS now %s", rss_bytes())

    def _execute(self, job: Job, refine: bool, push) -> int:
        """Run one job and send its replies; returns the pixels of the image it sent (0: none)."""
        def emit(msg: dict) -> None:
            push.send_multipart([job.identity, P.pack(msg)])

        try:
            if refine:
                data = self.engine.refine(job)
                emit(P.reply(job.id, P.REFINED, op="edit", data=data))
                return _pixels(data)
            data = getattr(self.engine, job.op)(job, emit)
            if job.op == "edit":
                self.edit_ms.append(data["render_ms"])
                self._maybe_schedule_refine(job, data)
            emit(P.reply(job.id, P.RESULT, op=job.op, data=data))
            return _pixels(data)
        except P.ProtocolError as e:
            self._count_error(e.code)
            emit(P.error_reply(job.id, e.code, e.message))
        except Exception as e:
            log.exception("internal error in %s", job.op)
            self._count_error(P.ErrorCode.INTERNAL)
            emit(P.error_reply(job.id, P.ErrorCode.INTERNAL, f"{type(e).__name__}: {e}"))
        return 0

    def _maybe_schedule_refine(self, job: Job, data: dict) -> None:
        if data["config"]["full"] or self.refine_delay_s < 0:
            return
        assert job.session is not None                      # an edit's job names its session
        sm = self.engine.served(self.engine.sessions.get(job.session).model)
        better = sm.preview_config(self.engine.refine_budget_ms)
        if (better.ratio, better.resolution) == (data["config"]["ratio"], data["config"]["resolution"]):
            return
        with self.cond:
            if not any(j.op == "edit" and j.session == job.session for q in self.queues.values() for j in q):
                self.refine_due[job.session] = (time.monotonic() + self.refine_delay_s, replace(job))


def _pixels(data: dict) -> int:
    image = data.get("image") or data.get("reconstruction") or {}
    return int(image.get("w", 0)) * int(image.get("h", 0))


def _answers(ctx: zmq.Context, address: str, timeout_ms: int = 500) -> bool:
    """Whether a daemon replies to `hello` on `address` (used before taking over a socket file)."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(address)
        sock.send(P.pack(P.request("hello", 0)))
        return bool(sock.poll(timeout_ms))
    finally:
        sock.close(0)
