"""Latency and MACs of every sub-generator (channel ratio x resolution) of a model, batch 1, CPU.

Configurations are timed round-robin (one warm-up call each, then `repeat` rounds), so that a
slow patch of a shared machine spreads over all of them instead of biasing one; the median is
reported. Thread count is fixed for the run and recorded.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass

import torch

from .models import TRAINED_RATIOS, Generator
from .models.macs import count_macs


@dataclass
class BenchRow:
    ratio: float
    resolution: int
    gmacs: float          # true multiply-accumulates, 1e9
    gmacs_paper: float    # the paper's counting convention
    mac_reduction: float  # full-generator MACs / these MACs (true convention)
    median_ms: float
    min_ms: float
    speedup: float        # full-generator median / this median
    samples: int


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_bench(g: Generator, ratios=TRAINED_RATIOS, resolutions=None, repeat: int = 5,
              impl: str = "auto", seed: int = 0, log=None) -> list[BenchRow]:
    cfg = g.cfg
    resolutions = resolutions or cfg.elastic_resolutions
    configs = [(r, res) for r in ratios for res in resolutions]
    if (1.0, cfg.resolution) not in configs:
        configs.insert(0, (1.0, cfg.resolution))     # the reference every speed-up is relative to
    z = torch.randn(1, cfg.style_dim, generator=torch.Generator().manual_seed(seed))
    times = {c: [] for c in configs}
    with torch.inference_mode():
        wplus = g.latent_to_wplus(z.to(g.w_avg.device))
        def call(c):
            t0 = time.perf_counter()
            g.synthesis(wplus, channels=c[0], target_res=c[1], impl=impl)
            return (time.perf_counter() - t0) * 1000
        for c in configs:
            call(c)                                   # warm-up: allocator, oneDNN primitive caches
        for k in range(repeat):
            for c in configs:
                times[c].append(call(c))
            if log:
                log(f"round {k + 1}/{repeat} done")
    full_macs = count_macs(cfg, 1.0, cfg.resolution, include_mapping=False).true
    full_ms = statistics.median(times[(1.0, cfg.resolution)])
    rows = []
    for r, res in configs:
        m = count_macs(cfg, r, res, include_mapping=False)
        med = statistics.median(times[(r, res)])
        rows.append(BenchRow(r, res, m.true / 1e9, m.paper / 1e9, full_macs / m.true, med,
                             min(times[(r, res)]), full_ms / med, len(times[(r, res)])))
    return rows


def environment(threads: int) -> dict:
    return {"cpu": cpu_name(), "logical_cpus": os.cpu_count(),
            "threads": threads, "torch": torch.__version__, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def p95(values) -> float:
    """The 95th percentile (nearest rank) of a non-empty sequence."""
    s = sorted(values)
    return s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def format_table(rows: list[BenchRow]) -> str:
    head = "| ratio | res | GMACs (true) | GMACs (paper conv.) | MAC reduction | median ms | min ms | speed-up |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.ratio:g} | {r.resolution} | {r.gmacs:.2f} | {r.gmacs_paper:.2f} | "
                     f"{r.mac_reduction:.1f}x | {r.median_ms:.1f} | {r.min_ms:.1f} | {r.speedup:.1f}x |")
    return "\n".join(lines)


def to_json(rows: list[BenchRow], env: dict, model: str) -> dict:
    return {"model": model, "environment": env, "rows": [asdict(r) for r in rows]}
