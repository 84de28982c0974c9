"""Latency and MACs of every sub-generator (channel ratio x resolution) of a model, batch 1, CPU.

Both the fast path (`inference.fast`, what the daemon draws with) and the reference
(`Generator.synthesis`) are timed, and compared with the machine's fp32 matrix-multiply peak
measured in the same run. Configurations are timed round-robin (one warm-up call each, then `repeat` rounds), so that a
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

from anycost.core.timing import cpu_name
from anycost.inference.conv_forms import FormChooser
from anycost.inference.fast import FastSynthesis, LastRender
from anycost.models import TRAINED_RATIOS, Generator
from anycost.models.macs import count_macs


@dataclass
class BenchRow:
    path: str             # "fast" (inference.fast, what the daemon draws with), "fast-lowp" (the same drawing
                          # previews with every low-precision form allowed: bf16/int8 layers where
                          # faster) or "reference" (Generator.synthesis)
    ratio: float
    resolution: int
    gmacs: float          # true multiply-accumulates, 1e9
    gmacs_paper: float    # the paper's counting convention
    mac_reduction: float  # full-generator MACs / these MACs (true convention)
    median_ms: float
    min_ms: float
    speedup: float        # full-generator median / this median, same path
    vs_reference: float   # reference median / this median, same configuration
    gmac_per_s: float     # true MACs / median time (Winograd does fewer multiplies than it is credited)
    peak_share: float     # gmac_per_s / the fp32 matrix-multiply peak measured in the same run
    samples: int


def matmul_peak(sizes=(1024, 2048), repeat: int = 5) -> float:
    """This machine's fp32 matrix-multiply throughput (GMAC/s, best of square products), at the
    current thread count: the ceiling the generator's convolutions are compared with."""
    best = 0.0
    gen = torch.Generator().manual_seed(0)
    for n in sizes:
        a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
        a @ b
        for _ in range(repeat):
            t0 = time.perf_counter()
            a @ b
            best = max(best, n ** 3 / (time.perf_counter() - t0) / 1e9)
    return best


def run_bench(g: Generator, ratios=TRAINED_RATIOS, resolutions=None, repeat: int = 5,
              impl: str = "auto", paths=("fast", "reference"), chooser: FormChooser | None = None,
              peak: float | None = None, seed: int = 0, log=None) -> list[BenchRow]:
    """Every (path, ratio, resolution), timed round-robin. `impl` is the reference's modulated-conv
    form; `chooser` decides (and remembers) the fast path's per-layer forms."""
    cfg = g.cfg
    resolutions = resolutions or cfg.elastic_resolutions
    configs = [(r, res) for r in ratios for res in resolutions]
    if (1.0, cfg.resolution) not in configs:
        configs.insert(0, (1.0, cfg.resolution))     # the reference every speed-up is relative to
    z = torch.randn(1, cfg.style_dim, generator=torch.Generator().manual_seed(seed))
    fast = FastSynthesis(g, chooser) if {"fast", "fast-lowp"} & set(paths) else None
    full = (1.0, cfg.resolution)                      # the final: float32 in every path
    draw = {"fast": lambda w, c: fast(w, channels=c[0], target_res=c[1]),  # type: ignore[misc]  # built for "fast"
            "fast-lowp": lambda w, c: fast(w, channels=c[0], target_res=c[1],  # type: ignore[misc]
                                           precision="fp32" if c == full else "int8"),
            "reference": lambda w, c: g.synthesis(w, channels=c[0], target_res=c[1], impl=impl)}
    runs = [(p, c) for c in configs for p in paths]
    times: dict[tuple, list[float]] = {k: [] for k in runs}
    with torch.inference_mode():
        wplus = g.latent_to_wplus(z.to(g.w_avg.device))

        def call(k):
            t0 = time.perf_counter()
            draw[k[0]](wplus, k[1])
            return (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        for k in runs:
            call(k)                                   # warm-up: allocator, primitive caches, form choice
        if log:
            log(f"warm-up (and choice of conv forms) {time.perf_counter() - t0:.1f} s")
        for i in range(repeat):
            for k in runs:
                times[k].append(call(k))
            if log:
                log(f"round {i + 1}/{repeat} done")
    peak = peak or matmul_peak()
    full_macs = count_macs(cfg, 1.0, cfg.resolution, include_mapping=False).true
    rows = []
    for p in paths:
        full_ms = statistics.median(times[(p, (1.0, cfg.resolution))])
        for r, res in configs:
            m = count_macs(cfg, r, res, include_mapping=False)
            med = statistics.median(times[(p, (r, res))])
            ref = statistics.median(times[("reference", (r, res))]) if "reference" in paths else float("nan")
            rate = m.true / med / 1e6
            rows.append(BenchRow(p, r, res, m.true / 1e9, m.paper / 1e9, full_macs / m.true, med,
                                 min(times[(p, (r, res))]), full_ms / med, ref / med, rate, rate / peak,
                                 len(times[(p, (r, res))])))
    return rows


def reuse_bench(g: Generator, ratio: float, resolution: int, first_rows, repeat: int = 10,
                chooser: FormChooser | None = None, seed: int = 0) -> list[dict]:
    """Fast path with and without the previous render's levels, for edits that move W+ rows from
    `first_row` on (a slider whose direction leaves the first rows alone)."""
    fast = FastSynthesis(g, chooser)
    gen = torch.Generator().manual_seed(seed)
    out = []
    with torch.inference_mode():
        wplus = g.latent_to_wplus(torch.randn(1, g.cfg.style_dim, generator=gen))
        step = torch.randn(1, 1, g.cfg.style_dim, generator=gen)
        for first in first_rows:
            times: dict[str, list[float]] = {"reuse": [], "fresh": []}
            reuse = LastRender()
            fast(wplus, ratio, resolution, reuse=reuse)
            for i in range(repeat + 1):
                edited = wplus.clone()
                edited[:, first:] += 0.1 * (i + 1) * step
                for mode in ("reuse", "fresh"):
                    t0 = time.perf_counter()
                    fast(edited, ratio, resolution, reuse=reuse if mode == "reuse" else None)
                    if i:                                    # the first round is a warm-up
                        times[mode].append((time.perf_counter() - t0) * 1000)
            out.append({"ratio": ratio, "resolution": resolution, "first_row": first,
                        "levels_reused": reuse.reused, "reuse_median_ms": statistics.median(times["reuse"]),
                        "fresh_median_ms": statistics.median(times["fresh"])})
    return out


def environment(threads: int) -> dict:
    return {"cpu": cpu_name(), "logical_cpus": os.cpu_count(),
            "threads": threads, "torch": torch.__version__, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def format_table(rows: list[BenchRow]) -> str:
    head = ("| path | ratio | res | GMACs (true) | GMACs (paper conv.) | MAC reduction | median ms | min ms | "
            "GMAC/s | of peak | speed-up vs full | vs reference |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        lines.append(f"| {r.path} | {r.ratio:g} | {r.resolution} | {r.gmacs:.2f} | {r.gmacs_paper:.2f} | "
                     f"{r.mac_reduction:.1f}x | {r.median_ms:.1f} | {r.min_ms:.1f} | {r.gmac_per_s:.1f} | "
                     f"{r.peak_share:.0%} | {r.speedup:.1f}x | {r.vs_reference:.2f}x |")
    return "\n".join(lines)


def to_json(rows: list[BenchRow], env: dict, model: str, extra: dict | None = None) -> dict:
    return {"model": model, "environment": env, "rows": [asdict(r) for r in rows], **(extra or {})}
