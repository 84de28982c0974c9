"""The ZeroMQ front of the daemon: one I/O thread (ROUTER socket) and one compute worker.

The I/O thread answers cheap ops at once (hello, models, stats, cancel, close, shutdown) and queues
the heavy ones (open, edit, render). The worker serves clients round-robin, one job at a time;
for each session only the newest pending edit is rendered (older ones are answered `superseded`),
and once a session has been quiet for `refine_delay_s` it sends, unasked, a better preview.
"""
from __future__ import annotations

import collections
import logging
import statistics
import threading
import time
from dataclasses import replace

import zmq

from .. import __version__
from .. import protocol as P
from ..bench import p95
from .engine import Engine, Job

log = logging.getLogger("anycost.backend")

COMPUTE_OPS = {"open": "open", "edit": "edit", "render": "render"}
OUTBOX = "inproc://anycost-outbox"


class BindError(Exception):
    pass


class Server:
    def __init__(self, engine: Engine, bind: str, curve: dict | None = None, max_queue: int = 256,
                 refine_delay_s: float = 0.35, max_message_bytes: int | None = None, threads: int = 1):
        self.engine = engine
        self.bind = bind
        self.curve = curve
        self.max_queue = max_queue
        self.refine_delay_s = refine_delay_s
        self.max_message_bytes = max_message_bytes or 2 * 4 * engine.max_pixels + (1 << 20)
        self.threads = threads
        self.ctx = zmq.Context()
        self.stopping = threading.Event()
        self.started = time.time()
        # scheduler state, guarded by `cond`
        self.cond = threading.Condition()
        self.queues: dict[bytes, collections.deque[Job]] = collections.OrderedDict()
        self.running: Job | None = None
        self.refine_due: dict[str, tuple[float, Job]] = {}
        # figures for `stats`
        self.counts = collections.Counter()
        self.errors = collections.Counter()
        self.edit_ms = collections.deque(maxlen=1000)
        self._auth = None

    # ------------------------------------------------------------------ lifecycle

    def open_socket(self) -> None:
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
        self.router.setsockopt(zmq.ROUTER_HANDOVER, 1)   # a reconnecting client keeps its identity
        if self.curve:
            from zmq.auth.thread import ThreadAuthenticator
            self._auth = ThreadAuthenticator(self.ctx)
            self._auth.start()
            self._auth.configure_curve(domain="*", location=str(self.curve["authorized"]))
            self.router.curve_server = True
            self.router.curve_publickey = self.curve["public"]
            self.router.curve_secretkey = self.curve["secret"]
        try:
            self.router.bind(self.bind)
        except zmq.ZMQError as e:
            self.router.close(0)
            if e.errno == zmq.EADDRINUSE:
                raise BindError(f"{self.bind} is already in use (another anycost-backend? "
                                f"`anycost-backend status --address {self.bind}` tells)") from None
            raise BindError(f"cannot bind {self.bind}: {e}") from None
        self.outbox = self.ctx.socket(zmq.PULL)
        self.outbox.bind(OUTBOX)

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

    def _handle(self, frames: list[bytes]) -> None:
        identity, payload = frames[0], frames[1:]
        rid = None
        try:
            if len(payload) != 1:
                raise P.ProtocolError(P.BAD_REQUEST, f"expected one frame per message, got {len(payload)}")
            msg = P.unpack(payload[0])
            rid = msg.get("id") if isinstance(msg.get("id"), (int, str)) else None
            rid, op = P.check_envelope(msg)
            self.counts[op] += 1
            if op in COMPUTE_OPS:
                self._enqueue(Job(identity, rid, op, msg,
                                  session=msg.get("session") if isinstance(msg.get("session"), str) else None))
                return
            self._send(identity, P.reply(rid, P.RESULT, op=op, data=getattr(self, f"_op_{op}")(identity, msg)))
        except P.ProtocolError as e:
            self.errors[e.code] += 1
            self._send(identity, P.error_reply(rid, e.code, e.message))
        except Exception as e:  # a bug must not take the daemon down for everyone
            log.exception("internal error")
            self.errors[P.INTERNAL] += 1
            self._send(identity, P.error_reply(rid, P.INTERNAL, f"{type(e).__name__}: {e}"))

    def _op_hello(self, identity, msg) -> dict:
        e = self.engine
        warnings = [e.perceptual.warning] if e.perceptual.warning else []
        warnings += [f"model {n} is untrained (random weights)" for n, m in e.models.items()
                     if m.model.metadata.get("untrained")]
        return {"server": "anycost-backend", "version": __version__, "protocol": P.VERSION,
                "state": "ready" if e.ready.is_set() else "calibrating",
                "models": list(e.models), "default_model": e.default_model,
                "perceptual": e.perceptual.name, "warnings": warnings, "device": e.device,
                "threads": self.threads,
                "limits": {"max_image_pixels": e.max_pixels, "max_message_bytes": self.max_message_bytes,
                           "max_sessions": e.sessions.max_sessions, "max_queue": self.max_queue}}

    def _op_models(self, identity, msg) -> dict:
        return {"models": [m.describe() for m in self.engine.models.values()],
                "default_model": self.engine.default_model}

    def _op_stats(self, identity, msg) -> dict:
        ms = list(self.edit_ms)
        with self.cond:
            queued = sum(len(q) for q in self.queues.values())
            running = self.running.op if self.running else None
        return {"uptime_s": round(time.time() - self.started, 1), "requests": dict(self.counts),
                "errors": dict(self.errors), "queued": queued, "running": running,
                "sessions": self.engine.sessions.count(),
                "edit_render_ms": {"n": len(ms), "median": round(statistics.median(ms), 2) if ms else None,
                                   "p95": round(p95(ms), 2) if ms else None}}

    def _op_cancel(self, identity, msg) -> dict:
        target = P.field(msg, "target", (int, str))
        with self.cond:
            q = self.queues.get(identity, ())
            for job in list(q):
                if job.id == target:
                    q.remove(job)
                    self._send(identity, P.error_reply(job.id, P.CANCELLED, "cancelled before it started"))
                    return {"target": target, "state": "pending", "cancelled": True}
            if self.running is not None and self.running.identity == identity and self.running.id == target:
                self.running.cancel.set()
                return {"target": target, "state": "running", "cancelled": True}
        return {"target": target, "state": "unknown", "cancelled": False}

    def _op_close(self, identity, msg) -> dict:
        sid = P.field(msg, "session", str)
        with self.cond:
            self.refine_due.pop(sid, None)
        self.engine.sessions.close(sid)
        return {"session": sid, "closed": True}

    def _op_shutdown(self, identity, msg) -> dict:
        self.stopping.set()
        return {"stopping": True}

    def _enqueue(self, job: Job) -> None:
        with self.cond:
            if sum(len(q) for q in self.queues.values()) >= self.max_queue:
                raise P.ProtocolError(P.BUSY, f"the queue is full ({self.max_queue} requests); try again")
            if job.op == "edit" and job.session:
                self.refine_due.pop(job.session, None)
                for ident, q in self.queues.items():      # latest wins: drop older edits of this session
                    for old in [j for j in q if j.op == "edit" and j.session == job.session]:
                        q.remove(old)
                        self.errors[P.SUPERSEDED] += 1
                        self._send(ident, P.error_reply(old.id, P.SUPERSEDED,
                                                        f"replaced by request {job.id!r} of the same session"))
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
                            self.cond.wait(min(wait, 0.5) if wait is not None else 0.5)
                            continue
                    self.running = job
                try:
                    self._execute(job, refine, push)
                finally:
                    with self.cond:
                        self.running = None
        except Exception:
            log.exception("worker stopped by an error")
            self.stopping.set()
        finally:
            push.close()

    def _execute(self, job: Job, refine: bool, push) -> None:
        def emit(msg: dict) -> None:
            push.send_multipart([job.identity, P.pack(msg)])

        try:
            if refine:
                data = self.engine.refine(job)
                emit(P.reply(job.id, P.REFINED, op="edit", data=data))
                return
            data = getattr(self.engine, COMPUTE_OPS[job.op])(job, emit)
            if job.op == "edit":
                self.edit_ms.append(data["render_ms"])
                self._maybe_schedule_refine(job, data)
            emit(P.reply(job.id, P.RESULT, op=job.op, data=data))
        except P.ProtocolError as e:
            self.errors[e.code] += 1
            emit(P.error_reply(job.id, e.code, e.message))
        except Exception as e:
            log.exception("internal error in %s", job.op)
            self.errors[P.INTERNAL] += 1
            emit(P.error_reply(job.id, P.INTERNAL, f"{type(e).__name__}: {e}"))

    def _maybe_schedule_refine(self, job: Job, data: dict) -> None:
        if data["config"]["full"] or self.refine_delay_s < 0:
            return
        sm = self.engine.served(self.engine.sessions.get(job.session).model)
        better = sm.preview_config(self.engine.refine_budget_ms)
        if (better.ratio, better.resolution) == (data["config"]["ratio"], data["config"]["resolution"]):
            return
        with self.cond:
            if not any(j.op == "edit" and j.session == job.session for q in self.queues.values() for j in q):
                self.refine_due[job.session] = (time.monotonic() + self.refine_delay_s, replace(job))
