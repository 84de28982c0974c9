"""End-to-end latency over loopback: edit -> preview per budget, and the full render, through a
real daemon started for the run. Reports the client-side round trip (median, p95) and how much of
it is spent outside the render itself (transport, queueing, (de)serialisation, image encoding).

`busy`: that many neighbour processes, each keeping one core busy, start once the daemon is ready
and the portrait projected, as an editor redrawing its canvas would while a slider moves."""
from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time

from anycost.core.defaults import DEMO_FACE
from anycost.core.timing import p95
from anycost.protocol import messages as P
from anycost.protocol.client import Client
from anycost.protocol.spawn import free_port, private_address, start_backend

FACE = DEMO_FACE
FIRST_START_S = 1800.0    # a first start measures the model's previews (minutes at 1024 px); an exit ends the wait


def _summary(rtt: list[float], render: list[float]) -> dict:
    outside = [a - b for a, b in zip(rtt, render, strict=True)]
    return {"n": len(rtt), "round_trip_median_ms": round(statistics.median(rtt), 2),
            "round_trip_p95_ms": round(p95(rtt), 2), "render_median_ms": round(statistics.median(render), 2),
            "outside_render_median_ms": round(statistics.median(outside), 2),
            "transport_share": round(statistics.median(outside) / statistics.median(rtt), 3)}


def open_face_session(c: Client) -> tuple[str, str]:
    """Project the shipped portrait (5 steps); the session and its first direction's name."""
    from PIL import Image

    img = Image.open(FACE).convert("RGB")
    s = c.call("open", image=P.Image(img.width, img.height, "RGB8", img.tobytes()).to_dict(), steps=5, timeout=600)
    return s["session"], s["directions"][0]["name"]


@contextlib.contextmanager
def busy_neighbours(n: int):
    """`n` processes spinning on the CPU until the block ends."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
             for _ in range(n)]
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


def run_e2e(model: str | None, threads: int | None, budgets=(50, 100, 250), n: int = 40, renders: int = 5,
            log=print, log_file=None, tcp: bool = False, busy: int = 0) -> dict:
    # the editors' default transport (a Unix socket), or loopback TCP
    address = f"tcp://127.0.0.1:{free_port()}" if tcp else private_address("bench")
    args = ["--refine-delay", "-1"] + (["--model", model] if model else [])
    proc = start_backend(address, args, threads=threads, log=log_file)
    try:
        with Client(address) as c:
            hello = c.wait_ready(timeout=FIRST_START_S, proc=proc)
            sid, name = open_face_session(c)
            out = {"model": P.ModelsResult.from_dict(c.call("models")).models[0].name, "threads": hello.threads,
                   "budgets": {}, "busy_neighbours": busy,
                   "transport": address.split("://")[0]}
            with busy_neighbours(busy):
                _timed_requests(c, sid, name, budgets, n, renders, out, log)
            c.call("close", session=sid)
            c.call("shutdown")
        proc.wait(timeout=30)
        return out
    finally:
        if proc.poll() is None:
            proc.kill()


def _timed_requests(c: Client, sid: str, name: str, budgets, n: int, renders: int, out: dict, log) -> None:
    """`n` edits at each budget (which configurations served them, in order of first use), then
    `renders` finals; the figures go into `out`."""
    for budget in budgets:
        configs: dict[str, int]
        rtt, render, configs = [], [], {}
        for i in range(n):
            value = (i % 7 - 3) / 3.0
            t0 = time.perf_counter()
            r = c.call("edit", session=sid, values={name: value}, budget_ms=budget, timeout=600)
            rtt.append((time.perf_counter() - t0) * 1000)
            render.append(r["render_ms"])
            precision = r["config"].get("precision", "fp32")
            key = f"{r['config']['ratio']:g}x@{r['config']['resolution']}"
            key += "" if precision == "fp32" else f" {precision}"
            configs[key] = configs.get(key, 0) + 1
        summary = out["budgets"][f"{budget:g}"] = dict(_summary(rtt, render), configs=configs)
        log(f"budget {budget:g} ms: {summary}")
    rtt, render = [], []
    for i in range(renders):
        t0 = time.perf_counter()
        r = c.call("render", session=sid, values={name: i / renders}, timeout=600)
        rtt.append((time.perf_counter() - t0) * 1000)
        render.append(r["render_ms"])
    out["render"] = dict(_summary(rtt, render), size=[r["image"]["w"], r["image"]["h"]])
    log(f"full render: {out['render']}")
