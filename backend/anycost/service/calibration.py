"""Per-machine latency of each sub-generator, and the choice of one for a latency budget."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from anycost.core import measurements
from anycost.core.timing import cpu_name
from anycost.editing.directions import fingerprint
from anycost.models import TRAINED_RATIOS, Generator
from anycost.models.macs import count_macs


@dataclass(frozen=True)
class SubConfig:
    ratio: float
    resolution: int
    latency_ms: float
    quality: float          # higher is better: consistency PSNR from the model, else MACs

    def describe(self) -> dict:
        return {"ratio": self.ratio, "resolution": self.resolution, "latency_ms": round(self.latency_ms, 2),
                "quality": self.quality}


def calibrate(g: Generator, cache_folder: Path | None, repeats: int = 3, log=None,
              synthesis=None, path: str = "reference") -> dict[tuple, float]:
    """Median synthesis latency (ms) of every trained configuration, cached per machine and model.

    `synthesis(wplus, channels=, target_res=)` is what the daemon will draw with (default the
    reference `g.synthesis`); `path` names it in the cache key."""
    synthesis = synthesis or g.synthesis
    threads = torch.get_num_threads()
    device = g.w_avg.device.type
    key = f"{fingerprint(g)}-{cpu_name().replace(' ', '_').replace('/', '_')}-{device}-{threads}t-{path}"
    cache = cache_folder / f"{key}.json" if cache_folder else None
    saved = measurements.read(cache)
    try:
        return {(float(r), int(k)): float(ms) for r, k, ms in saved["latency"]}
    except (KeyError, TypeError, ValueError):
        pass                                  # none, or damaged: measured again
    configs = [(r, k) for r in TRAINED_RATIOS for k in g.cfg.elastic_resolutions]
    wplus = g.latent_to_wplus(torch.zeros(1, g.cfg.style_dim, device=g.w_avg.device))
    times: dict[tuple[float, int], list[float]] = {c: [] for c in configs}
    with torch.inference_mode():
        for c in configs:
            synthesis(wplus, channels=c[0], target_res=c[1])      # warm-up (and the fast path's tuning)
        for _ in range(repeats):
            for c in configs:
                t0 = time.perf_counter()
                synthesis(wplus, channels=c[0], target_res=c[1])
                times[c].append((time.perf_counter() - t0) * 1000)
    latency = {c: statistics.median(v) for c, v in times.items()}
    measurements.write(cache, {"latency": [[r, k, ms] for (r, k), ms in latency.items()],
                               "threads": threads, "device": device})
    if log:
        log(f"calibrated {len(configs)} configurations in {sum(map(sum, times.values())) / 1000:.1f} s")
    return latency


def rank_configs(g: Generator, latency: dict[tuple, float], metadata: dict) -> list[SubConfig]:
    """Configurations ordered best quality first."""
    consistency = {(float(c["ratio"]), int(c["resolution"])): float(c["psnr"])
                   for c in (metadata.get("figures") or {}).get("consistency", [])}
    out = []
    for (r, k), ms in latency.items():
        if (r, k) == (1.0, g.cfg.resolution):
            # the full generator is the reference every consistency figure is measured against
            quality = 1e9 if consistency else float(count_macs(g.cfg, r, k).true)
        elif consistency:
            quality = consistency.get((r, k), -1.0)
        else:
            quality = float(count_macs(g.cfg, r, k).true)
        out.append(SubConfig(r, k, ms, quality))
    return sorted(out, key=lambda c: (-c.quality, c.latency_ms))


def pick(ranked: list[SubConfig], budget_ms: float) -> SubConfig:
    """The best-quality configuration whose measured latency fits; the fastest if none does."""
    for c in ranked:
        if c.latency_ms <= budget_ms:
            return c
    return min(ranked, key=lambda c: c.latency_ms)
