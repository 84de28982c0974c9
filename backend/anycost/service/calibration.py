"""Per-machine latency of each sub-generator, their agreement with the final, and the choice of one
for a latency budget.

A model trained for sub-generators offers every trained channel ratio at every elastic
resolution, ranked by the consistency figures it carries. One that is not (a plain StyleGAN2:
metadata `sub_generators: false`) offers only full channels at its lower resolutions, i.e. its
own skip outputs. A trained model without figures (an official file, a StyleGAN2) has them
measured when first served and cached; an untrained one is ranked by MACs."""
from __future__ import annotations

import statistics
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import torch

from anycost.core import measurements
from anycost.core.timing import cpu_name, machine_key
from anycost.editing.consistency import (
    LOWP_MARGIN,
    LOWP_MIN_PSNR,
    LOWP_SAMPLES,
    consistency_figures,
    precision_figures,
    precision_tiers,
)
from anycost.editing.directions import fingerprint, weights_hash
from anycost.models import TRAINED_RATIOS, Generator
from anycost.models.macs import count_macs

MEASURED_SAMPLES = 16        # latents for the figures measured at first serve (a trained model: 64)


def preview_configs(g: Generator, metadata: dict) -> list[tuple[float, int]]:
    """The (channel ratio, resolution) pairs a model may preview with (the full generator included)."""
    ratios = TRAINED_RATIOS if metadata.get("sub_generators", True) else (1.0,)
    return [(r, k) for r in ratios for k in g.cfg.elastic_resolutions]


def measured_consistency(g: Generator, configs: list[tuple[float, int]], cache_folder: Path | None,
                         log=None) -> list[dict]:
    """consistency_figures of `configs` for a model that carries none, kept in `cache_folder` per
    model: per its weights, all of them (an adapted model shares the original's mapping network,
    which is all `fingerprint` reads), not per machine (the figures do not depend on it)."""
    cache = cache_folder / f"consistency-{weights_hash(g)}.json" if cache_folder else None
    saved = measurements.read(cache)
    want = sorted(c for c in configs if c != (1.0, g.cfg.resolution))
    if isinstance(saved, dict) and saved.get("configs") == [list(c) for c in want] \
            and isinstance(saved.get("consistency"), list):
        return saved["consistency"]
    t0 = time.perf_counter()
    with torch.inference_mode():
        figures = consistency_figures(g, n=MEASURED_SAMPLES, batch=4, configs=want)
    measurements.write(cache, {"configs": [list(c) for c in want], "consistency": figures,
                               "samples": MEASURED_SAMPLES, "noise": "const"})
    if log:
        log(f"measured how {len(want)} preview configurations agree with the final "
            f"({MEASURED_SAMPLES} latents, {time.perf_counter() - t0:.1f} s): "
            + ", ".join(f"{f['ratio']:g}x@{f['resolution']} {f['psnr']:.1f} dB" for f in figures))
    return figures


def measured_preview_precision(g: Generator, fast, configs: list[tuple[float, int]], cache_folder: Path | None,
                               log=None) -> dict[tuple[float, int], dict]:
    """`precision_figures` (the precision each preview configuration may be drawn in by `fast`, a
    FastSynthesis), cached per weights and machine, valid while the forms chosen for the
    low-precision layers it drew with are the same (the figures depend on which layers went low)."""
    tiers = precision_tiers(fast)

    def forms() -> dict[str, str | None]:        # the choices made for these configurations' low layers
        saved = fast.chooser.chosen()
        return {k: saved.get(k) for t in tiers for r, res in configs for k in fast.layer_keys(r, res, t)}

    chosen = forms()
    cache = cache_folder / f"precision-{weights_hash(g)}-{machine_key()}.json" if cache_folder else None
    saved = measurements.read(cache)
    known = saved.get("forms") if isinstance(saved, dict) else None   # None: a layer the figures did not use
    if isinstance(known, dict) and known.keys() == chosen.keys() and any(v is not None for v in known.values()) \
            and all(chosen[k] == v for k, v in known.items() if v is not None) \
            and isinstance(saved.get("configs"), list) and saved.get("samples") == LOWP_SAMPLES \
            and saved.get("min_psnr") == LOWP_MIN_PSNR + LOWP_MARGIN:
        try:
            return {(float(c["ratio"]), int(c["resolution"])): {
                "precision": str(c["precision"]), "used": str(c["used"]),
                "psnr": {str(p): float(db) for p, db in c["psnr"].items()}} for c in saved["configs"]}
        except (TypeError, ValueError, KeyError, AttributeError):
            pass                                               # damaged: measured again
    t0 = time.perf_counter()
    out = precision_figures(g, fast, configs)
    measurements.write(cache, {"forms": forms(), "samples": LOWP_SAMPLES, "min_psnr": LOWP_MIN_PSNR + LOWP_MARGIN,
                               "configs": [dict(ratio=r, resolution=k, **v) for (r, k), v in out.items()]})
    if log and out:
        log(f"measured low-precision previews against float32 ({time.perf_counter() - t0:.1f} s): "
            + ", ".join(f"{r:g}x@{k} " + "/".join(f"{p} {db:.1f} dB" for p, db in v["psnr"].items())
                        + f" -> {v['used']}" for (r, k), v in out.items()))
    return out


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
              synthesis=None, path: str = "reference",
              configs: list[tuple[float, int]] | None = None) -> dict[tuple, float]:
    """Median synthesis latency (ms) of `configs` (default: every trained ratio at every elastic
    resolution), cached per machine and model.

    `synthesis(wplus, channels=, target_res=)` is what the daemon will draw with (default the
    reference `g.synthesis`); `path` names it in the cache key."""
    synthesis = synthesis or g.synthesis
    threads = torch.get_num_threads()
    device = g.w_avg.device.type
    key = f"{fingerprint(g)}-{cpu_name().replace(' ', '_').replace('/', '_')}-{device}-{threads}t-{path}"
    cache = cache_folder / f"{key}.json" if cache_folder else None
    saved = measurements.read(cache)
    configs = configs or [(r, k) for r in TRAINED_RATIOS for k in g.cfg.elastic_resolutions]
    try:
        latency = {(float(r), int(k)): float(ms) for r, k, ms in saved["latency"]}
        if set(configs) <= set(latency):
            return {c: latency[c] for c in configs}
    except (KeyError, TypeError, ValueError):
        pass                                  # none, or damaged: measured again
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


def rank_configs(g: Generator, latency: dict[tuple, float], figures: list[dict]) -> list[SubConfig]:
    """Configurations ordered best quality first: by their consistency `figures` (PSNR against the
    final), or by MACs where there are none."""
    consistency = {(float(c["ratio"]), int(c["resolution"])): float(c["psnr"]) for c in figures}
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


def pick(ranked: list[SubConfig], budget_ms: float, slowdown: float = 1.0) -> SubConfig:
    """The best-quality configuration whose measured latency, times `slowdown`, fits; the fastest if
    none does."""
    for c in ranked:
        if c.latency_ms * slowdown <= budget_ms:
            return c
    return min(ranked, key=lambda c: c.latency_ms)


class Slowdown:
    """How much slower previews draw now than when they were calibrated: the median ratio of the
    last `window` preview times to their configuration's calibrated latency, from 1 to `most`.

    The calibration is measured once per machine, usually on a quiet one; while the user drags a
    slider the editor itself keeps a core busy, and a shared VM drifts. Never below 1: a preview
    that reuses its previous render's levels is faster than its configuration, and the budget
    choice should not then reach for one it cannot draw in time."""

    def __init__(self, window: int = 8, least_samples: int = 3, most: float = 4.0):
        self.ratios: deque[float] = deque(maxlen=window)
        self.least_samples, self.most = least_samples, most

    def observe(self, config: SubConfig, ms: float) -> None:
        if config.latency_ms > 0:
            self.ratios.append(ms / config.latency_ms)

    @property
    def factor(self) -> float:
        if len(self.ratios) < self.least_samples:      # one cold or unlucky call is not a trend
            return 1.0
        return min(self.most, max(1.0, statistics.median(self.ratios)))
