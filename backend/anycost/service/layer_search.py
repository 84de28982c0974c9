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

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..models import TRAINED_RATIOS, Generator
from ..models.channels import layer_widths
from ..models.conv_forms import machine_key
from ..models.fast import FastSynthesis


@dataclass
class LayerConfig:
    resolution: int
    ratios: list[float]          # one per channel entry (entries above `resolution` are not run)
    widths: list[int]
    latency_ms: float
    psnr: float                  # against the full generator, dB
    budget_ms: float
    fits: bool


def fidelity(fast: FastSynthesis, wpluses: list[torch.Tensor], refs: list[torch.Tensor], widths, res: int) -> float:
    scores = []
    for w, ref in zip(wpluses, refs):
        out = fast(w, channels=widths, target_res=res)
        mse = (out.clamp(-1, 1) - ref).square().mean().item() / 4.0       # images in [-1, 1]
        scores.append(10 * math.log10(1.0 / max(mse, 1e-10)))
    return statistics.mean(scores)


def latency(fast: FastSynthesis, wplus: torch.Tensor, widths, res: int, repeat: int = 3) -> float:
    fast(wplus, channels=widths, target_res=res)
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fast(wplus, channels=widths, target_res=res)
        ts.append((time.perf_counter() - t0) * 1000)
    return statistics.median(ts)


def search(g: Generator, fast: FastSynthesis, resolution: int, budget_ms: float, latents: int = 4,
           seed: int = 0, log=None) -> LayerConfig:
    cfg = g.cfg
    g.resolve_target_res(resolution)
    steps = sorted(TRAINED_RATIOS, reverse=True)                  # 1, 0.75, 0.5, 0.25
    levels = [r for r in cfg.levels if r <= resolution]
    # channel entries per level: the 4 px level owns entries 0 (input) and 1; level k the next two
    groups = [[0, 1]] + [[2 * k, 2 * k + 1] for k in range(1, len(levels))]
    gen = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        wpluses = [g.latent_to_wplus(torch.randn(1, cfg.style_dim, generator=gen)) for _ in range(latents)]
        refs = [F.adaptive_avg_pool2d(fast(w).clamp(-1, 1), resolution) for w in wpluses]
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
                  folder: Path | None, log=None) -> LayerConfig:
    path = folder / f"layers-{model_key}-{machine_key()}-{resolution}-{budget_ms:g}ms.json" if folder else None
    if path is not None and path.is_file():
        try:
            return LayerConfig(**json.loads(path.read_text()))
        except (ValueError, TypeError):
            pass                                                       # damaged: searched again
    found = search(g, fast, resolution, budget_ms, log=log)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(found)))
    return found
