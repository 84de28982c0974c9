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
LOWP_MIN_PSNR = 40.0         # a low-precision preview this close to its float32 image may be served,
LOWP_MARGIN = 1.0            # by its lowest PSNR over LOWP_SAMPLES seeded latents less this margin
LOWP_SAMPLES = 6             # (int8's PSNR varies by ~10 dB between faces; the average face is its best)


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


def precision_tiers(fast) -> list[str]:
    """The precisions below float32 `fast` (a FastSynthesis) can draw a preview in, lowest first."""
    return [p for p, ok in (("int8", fast.chooser.int8), ("bf16", fast.chooser.bf16)) if ok]


def precision_figures(g: Generator, fast, configs: Sequence[tuple[float, int]]) -> dict[tuple[float, int], dict]:
    """Per configuration, the lowest precision its preview may be drawn in by `fast` (a
    FastSynthesis): the first of "int8" (int8 and bfloat16 forms allowed), "bf16" whose image keeps
    LOWP_MIN_PSNR + LOWP_MARGIN against the same configuration in float32 on each of LOWP_SAMPLES
    seeded latents. {config: {"precision": what to draw with, "used": the lowest a layer then
    computes in, "psnr": {lowest precision a layer took: lowest dB}}} for the configurations where
    a low-precision form won some layer (elsewhere a preview is float32 anyway)."""
    tiers = precision_tiers(fast)
    out: dict[tuple[float, int], dict] = {}
    with torch.inference_mode():
        seeded = torch.randn(LOWP_SAMPLES, g.cfg.style_dim, generator=torch.Generator().manual_seed(0))
        wrows = [g.latent_to_wplus(z[None].to(g.w_avg.device)) for z in seeded]
        for r, k in configs:
            tried: dict[str, float] = {}
            reference = None
            for tier in tiers:
                if tier in tried:                                 # a lower tier's layers all went this low
                    continue
                used = fast.precision_used(r, k, tier)           # chooses the forms of its layers
                if used == "fp32":                               # the same as float32
                    continue
                if reference is None:
                    reference = [fast(w, channels=r, target_res=k) for w in wrows]
                db = min(psnr(fast(w, channels=r, target_res=k, precision=tier), ref)
                         for w, ref in zip(wrows, reference, strict=True))
                tried[used] = db
                if db - LOWP_MARGIN >= LOWP_MIN_PSNR:
                    out[(r, k)] = {"precision": tier, "used": used, "psnr": tried}
                    break
            else:
                if tried:
                    out[(r, k)] = {"precision": "fp32", "used": "fp32", "psnr": tried}
    return out
