"""Per-layer channel configurations under a latency budget, found on this machine.

The official release shipped per-layer configurations found offline by evolutionary search. Here a
greedy search runs on the user's machine with the fast path's real latency: start from full width
at the preview resolution; at each step, narrow one level (both convs of it) by one trained ratio,
choosing the level that saves the most measured time per dB of fidelity lost; stop once the
budget is met. Fidelity is the PSNR of the sub-generator's image against the full generator's
image box-filtered to the same size, averaged over a few seeded latents (the quantity the
paper's consistency figures measure). Results are cached per machine, model and budget.
"""
from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from anycost.core import measurements
from anycost.core.timing import machine_key, timed
from anycost.editing.projection import psnr
from anycost.inference.fast import FastSynthesis
from anycost.models import TRAINED_RATIOS, Generator
from anycost.models.channels import layer_widths, uniform_channels

MAX_PSNR = 100.0


@dataclass
class LayerConfig:
    resolution: int
    ratios: list[float]          # one per channel entry (entries above `resolution` are not run)
    widths: list[int]
    latency_ms: float
    psnr: float                  # against the full generator, dB
    budget_ms: float
    fits: bool


@dataclass
class ReferenceRenders:
    """Seeded latents and the full generator's images of them, rendered once per model."""
    wpluses: list[torch.Tensor]
    fulls: list[torch.Tensor]

    def references(self, res: int) -> list[torch.Tensor]:
        return [F.adaptive_avg_pool2d(f, res) for f in self.fulls]


def reference_renders(g: Generator, fast: FastSynthesis, latents: int = 4, seed: int = 0) -> ReferenceRenders:
    gen = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        wpluses = [g.latent_to_wplus(torch.randn(1, g.cfg.style_dim, generator=gen)) for _ in range(latents)]
        return ReferenceRenders(wpluses, [fast(w).clamp(-1, 1) for w in wpluses])


def fidelity(fast: FastSynthesis, wpluses: list[torch.Tensor], refs: list[torch.Tensor], widths, res: int) -> float:
    """Mean PSNR against the references, each at most MAX_PSNR (an exact match is not infinitely better)."""
    return statistics.mean(min(psnr(fast(w, channels=widths, target_res=res), ref), MAX_PSNR)
                           for w, ref in zip(wpluses, refs, strict=True))


def latency(fast: FastSynthesis, wplus: torch.Tensor, widths, res: int, repeat: int = 3) -> float:
    fast(wplus, channels=widths, target_res=res)
    return statistics.median(timed(lambda: fast(wplus, channels=widths, target_res=res)) for _ in range(repeat))


def best_uniform(g: Generator, fast: FastSynthesis, probe: ReferenceRenders, res: int, budget_ms: float) -> dict | None:
    """The widest uniform trained ratio at `res` whose measured latency fits, measured as `search` does."""
    refs = probe.references(res)
    with torch.inference_mode():
        for ratio in sorted(TRAINED_RATIOS, reverse=True):
            widths = uniform_channels(g.cfg, ratio)
            ms = latency(fast, probe.wpluses[0], widths, res)
            if ms <= budget_ms:
                return {"ratio": ratio, "latency_ms": ms, "psnr": fidelity(fast, probe.wpluses, refs, widths, res)}
    return None


def search(g: Generator, fast: FastSynthesis, resolution: int, budget_ms: float, latents: int = 4,
           probe: ReferenceRenders | None = None, log=None) -> LayerConfig:
    cfg = g.cfg
    g.resolve_target_res(resolution)
    steps = sorted(TRAINED_RATIOS, reverse=True)                  # 1, 0.75, 0.5, 0.25
    levels = [r for r in cfg.levels if r <= resolution]
    # channel entries per level: the 4 px level owns entries 0 (input) and 1; level k the next two
    groups = [[0, 1]] + [[2 * k, 2 * k + 1] for k in range(1, len(levels))]
    probe = probe or reference_renders(g, fast, latents)
    wpluses, refs = probe.wpluses, probe.references(resolution)
    with torch.inference_mode():
        level_of = [0] * len(groups)
        ratios = [1.0] * cfg.n_channel_entries
        current = latency(fast, wpluses[0], layer_widths(cfg, ratios), resolution)
        quality = fidelity(fast, wpluses, refs, layer_widths(cfg, ratios), resolution)
        while current > budget_ms:
            best = None
            for gi, group in enumerate(groups):
                if level_of[gi] + 1 >= len(steps):
                    continue
                trial = list(ratios)
                for e in group:
                    trial[e] = steps[level_of[gi] + 1]
                widths = layer_widths(cfg, trial)
                ms = latency(fast, wpluses[0], widths, resolution)
                q = fidelity(fast, wpluses, refs, widths, resolution)
                score = (current - ms) / max(quality - q, 1e-3)       # ms saved per dB lost
                if best is None or score > best[0]:
                    best = (score, gi, trial, ms, q)
            if best is None:
                break                                                  # everything at the narrowest
            _, gi, ratios, current, quality = best
            level_of[gi] += 1
            if log:
                log(f"{resolution} px: narrowed level {levels[gi]} px -> {current:.1f} ms, {quality:.2f} dB")
    return LayerConfig(resolution, ratios, layer_widths(cfg, ratios), current, quality, budget_ms,
                       current <= budget_ms)


def cached_search(g: Generator, fast: FastSynthesis, model_key: str, resolution: int, budget_ms: float,
                  folder: Path | None, probe: ReferenceRenders | None = None, log=None) -> LayerConfig:
    path = folder / f"layers-{model_key}-{machine_key()}-{resolution}-{budget_ms:g}ms.json" if folder else None
    saved = measurements.read(path)
    if isinstance(saved, dict):
        try:
            return LayerConfig(**saved)
        except TypeError:
            pass                                                       # damaged: searched again
    found = search(g, fast, resolution, budget_ms, probe=probe, log=log)
    measurements.write(path, asdict(found))
    return found
