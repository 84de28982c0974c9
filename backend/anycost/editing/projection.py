"""Projection of an image into W+: encoder guess, then consistency-aware latent optimization.

w* = argmin_w  l(G(w), x) + alpha * E_{k,C} l(G_C^k(w), x_k)      (Anycost GAN, Sec. 3.3)

l = perceptual + MSE; G_C^k is a random sub-generator (channel ratio C, resolution k) each step and
x_k the target downsampled to k. The second term keeps every preview faithful to the photo, not
only the full generator's output.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from anycost.editing.perceptual import Perceptual
from anycost.models import TRAINED_RATIOS, Generator


class ProjectionCancelled(Exception):
    pass


@dataclass
class ProjectionOptions:
    steps: int = 100                 # optimization steps (0 = encoder guess / mean only)
    time_limit_s: float = 120.0      # stop after this long, whatever the step
    lr: float = 0.02                 # Adam on W+
    consistency_weight: float = 0.5  # alpha of the consistency term; 0 = full generator only
    mse_weight: float = 1.0
    perceptual_weight: float = 1.0
    patience: int = 25               # early stop: no 0.5 % improvement of the best loss in this many steps
    preview_every: int = 10          # progress callback carries an image every N steps
    seed: int = 0


@dataclass
class ProjectionResult:
    wplus: torch.Tensor              # [1, n_style, D]
    steps: int
    seconds: float
    stopped: str                     # "steps" | "time" | "converged"
    metrics: dict = field(default_factory=dict)


def downsample(x: torch.Tensor, size: int) -> torch.Tensor:
    return x if x.shape[-1] == size else F.interpolate(x, size=size, mode="area")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1] (computed on [0, 1])."""
    mse = ((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2).square().mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def sub_configs(g: Generator) -> list[tuple[float, int]]:
    """Every trained sub-generator except the full one."""
    return [(r, k) for r in TRAINED_RATIOS for k in g.cfg.elastic_resolutions
            if (r, k) != (1.0, g.cfg.resolution)]


def report_configs(g: Generator) -> list[tuple[float, int]]:
    """The previews whose fit is reported: each channel ratio at full resolution, each lower
    resolution at full width."""
    lower = [k for k in g.cfg.elastic_resolutions if k != g.cfg.resolution]
    return [(r, g.cfg.resolution) for r in TRAINED_RATIOS[1:]] + [(1.0, k) for k in lower]


def initial_wplus(g: Generator, target: torch.Tensor, encoder=None) -> torch.Tensor:
    """The encoder's W+ guess (the paper's instant projection), else the mean w in every row."""
    if encoder is not None:
        with torch.no_grad():
            return encoder(target).detach().clone()
    return g.w_avg.detach().clone()[None, None].expand(1, g.n_style, -1).clone()


def project(
    g: Generator,                               # or a CREPS generator's CrepsAsAnycost
    target: torch.Tensor,                       # [1, 3, R, R] in [-1, 1], R = the model's resolution
    perceptual: Perceptual,
    options: ProjectionOptions = ProjectionOptions(),  # noqa: B008 (read only, never mutated)
    encoder=None,                               # image -> W+ guess; None = start from the mean w
    progress: Callable[[int, int, float, torch.Tensor | None], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    configs: list[tuple[float, int]] | None = None,   # previews kept faithful; default sub_configs(g)
) -> ProjectionResult:
    """Optimize W+ so that the full generator and its sub-generators reproduce `target`."""
    res = g.cfg.resolution
    assert target.shape == (1, 3, res, res), (target.shape, res)
    t0 = time.monotonic()
    rng = random.Random(options.seed)
    subs = sub_configs(g) if configs is None else configs
    targets = {k: downsample(target, k) for k in {res, *(k for _, k in subs)}}
    wplus = initial_wplus(g, target, encoder).requires_grad_(True)
    opt = torch.optim.Adam([wplus], lr=options.lr)

    def loss_of(img, ref):
        return (options.perceptual_weight * perceptual.distance(img, ref).mean()
                + options.mse_weight * F.mse_loss(img, ref))

    best, best_step, stopped, step = float("inf"), 0, "steps", 0
    for step in range(1, options.steps + 1):
        if should_stop and should_stop():
            raise ProjectionCancelled()
        img = g.synthesis(wplus)
        loss = loss_of(img, target)
        if options.consistency_weight > 0 and subs:
            ratio, k = rng.choice(subs)
            sub = g.synthesis(wplus, channels=ratio, target_res=k)
            loss = loss + options.consistency_weight * loss_of(sub, targets[k])
        # gradient w.r.t. the latent only: the generator's weights need none
        (wplus.grad,) = torch.autograd.grad(loss, [wplus])
        opt.step()
        value = loss.item()
        if value < best * 0.995:
            best, best_step = value, step
        if progress:
            show = step % options.preview_every == 0 or step == options.steps
            progress(step, options.steps, value, img.detach() if show else None)
        if step - best_step >= options.patience:
            stopped = "converged"
            break
        if time.monotonic() - t0 > options.time_limit_s:
            stopped = "time"
            break
    wplus = wplus.detach()
    return ProjectionResult(wplus, step, time.monotonic() - t0, stopped,
                            fit_metrics(g, wplus, target, perceptual, configs))


@torch.no_grad()
def fit_metrics(g: Generator, wplus: torch.Tensor, target: torch.Tensor, perceptual: Perceptual,
                configs: list[tuple[float, int]] | None = None) -> dict:
    """PSNR (and the perceptual distance) of the full generator and of each preview configuration
    (default `report_configs(g)`)."""
    full = g.synthesis(wplus)
    out: dict = {"psnr": round(psnr(full, target), 3),
                 perceptual.name: round(perceptual.distance(full, target).item(), 5)}
    per_config = []
    for ratio, k in report_configs(g) if configs is None else configs:
        img = g.synthesis(wplus, channels=ratio, target_res=k)
        per_config.append({"ratio": ratio, "resolution": k, "psnr": round(psnr(img, downsample(target, k)), 3)})
    out["configs"] = per_config
    return out
