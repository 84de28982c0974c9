"""How well each preview configuration agrees with the final: the figure the budget choice ranks by.

A trained anycost model carries these figures (measured by `anycost-train release`); a model that
carries none (a plain StyleGAN2, an official file) is measured by the daemon when first served."""
from __future__ import annotations

import statistics
from typing import Sequence

import torch

from anycost.editing.perceptual import Perceptual
from anycost.editing.projection import downsample, psnr
from anycost.models import TRAINED_RATIOS, Generator

SAMPLES = 64
SEED = 2024


@torch.no_grad()
def consistency_figures(g: Generator, perceptual: Perceptual | None = None, n: int = SAMPLES, seed: int = SEED,
                        batch: int = 16, configs: Sequence[tuple[float, int]] | None = None) -> list[dict]:
    """Each sub-generator (channel ratio x resolution; default every trained ratio at every elastic
    resolution) against the full generator's image of the same latent, area-downsampled to the
    sub-generator's size: mean PSNR (dB), and the perceptual distance when given, over `n` random
    latents (stored noise). This is the agreement a preview has with the final."""
    g = g.eval()
    z = torch.randn(n, g.cfg.style_dim, generator=torch.Generator().manual_seed(seed)).to(g.w_avg.device)
    configs = [c for c in (configs or [(r, k) for r in TRAINED_RATIOS for k in g.cfg.elastic_resolutions])
               if c != (1.0, g.cfg.resolution)]
    keys = ["psnr"] + ([perceptual.name] if perceptual else [])
    per_config: dict[tuple[float, int], dict[str, list[float]]] = {c: {k: [] for k in keys} for c in configs}
    for start in range(0, n, batch):
        wplus = g.latent_to_wplus(z[start:start + batch])
        full = g.synthesis(wplus, noise="const")
        for ratio, res in configs:
            sub = g.synthesis(wplus, channels=ratio, target_res=res, noise="const")
            ref = downsample(full, res)
            per_config[(ratio, res)]["psnr"] += [psnr(a[None], b[None]) for a, b in zip(sub, ref, strict=True)]
            if perceptual:
                per_config[(ratio, res)][perceptual.name] += perceptual.distance(sub, ref).tolist()
    return [{"ratio": r, "resolution": k, **{key: round(statistics.mean(v), 4) for key, v in values.items()}}
            for (r, k), values in per_config.items()]
