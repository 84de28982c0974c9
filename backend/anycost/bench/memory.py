"""The daemon's memory around a huge output: resident memory before, at its peak and 5 s after an
8192 x 8192 `edit` and `render`, and preview latency before and after, through real daemons started
for the run: one as shipped (freed memory given back after such jobs) and one with `--keep-memory`
(the allocator keeps it, as before), one after the other on the same machine."""
from __future__ import annotations

import statistics
import threading
import time

from anycost.bench.e2e import FIRST_START_S, open_face_session
from anycost.core.memory import process_memory_mb as rss_mb
from anycost.protocol import messages as P
from anycost.protocol.client import Client
from anycost.protocol.spawn import private_address, start_backend


class Sampler:
    """The highest RSS of a process seen every 10 ms while it runs."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.01)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def _previews(c: Client, sid: str, name: str, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        c.call("edit", session=sid, values={name: (i % 5 - 2) / 2}, budget_ms=100, timeout=600)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def measure(model: str | None, threads: int | None, keep_memory: bool, side: int = 8192, n: int = 15,
            log=print) -> dict:
    args = ["--refine-delay", "-1"] + (["--model", model] if model else []) + (["--keep-memory"] if keep_memory else [])
    address = private_address("membench")
    proc = start_backend(address, args, threads=threads)
    try:
        with Client(address) as c:
            c.wait_ready(timeout=FIRST_START_S, proc=proc)
            sid, name = open_face_session(c)
            before_ms = _previews(c, sid, name, n)
            time.sleep(1.0)
            out: dict[str, object] = {"keep_memory": keep_memory, "rss_before_mb": round(rss_mb(proc.pid), 1)}
            sampler = Sampler(proc.pid)
            c.call("edit", session=sid, values={name: 1.0}, budget_ms=100, size=[side, side], timeout=600)
            r = c.call("render", session=sid, values={name: 1.0}, size=[side, side], timeout=600)
            assert (r["image"]["w"], r["image"]["h"]) == (side, side)
            del r
            done = time.monotonic()
            time.sleep(5.0)
            out["rss_peak_mb"] = round(sampler.stop(), 1)
            out["rss_5s_after_mb"] = round(rss_mb(proc.pid), 1)
            out["seconds_measured_after"] = round(time.monotonic() - done, 2)
            after_ms = _previews(c, sid, name, n)
            out["rss_after_previews_mb"] = round(rss_mb(proc.pid), 1)
            out["preview_ms_before"] = round(statistics.median(before_ms), 2)
            out["preview_ms_first_after"] = round(after_ms[0], 2)
            out["preview_ms_after"] = round(statistics.median(after_ms[1:]), 2)
            out["model"] = P.ModelsResult.from_dict(c.call("models")).models[0].name
            c.call("close", session=sid)
            c.call("shutdown")
        proc.wait(timeout=60)
        log(f"{'--keep-memory' if keep_memory else 'as shipped'}: {out}")
        return out
    finally:
        if proc.poll() is None:
            proc.kill()


def run_memory(model: str | None, threads: int | None, side: int = 8192, log=print) -> dict:
    runs = [measure(model, threads, keep, side, log=log) for keep in (False, True)]
    return {"side": side, "runs": runs}
