"""Sampling sub-generators during training, and their encoding for the conditioned discriminator."""
from __future__ import annotations

import random

import torch

from anycost.models import TRAINED_RATIOS, GeneratorConfig
from anycost.models.channels import layer_widths


def sample_ratios(cfg: GeneratorConfig, rnd: random.Random, mode: str) -> list[float]:
    """One channel ratio per layer: all equal ("uniform"), independent ("flexible"), or either."""
    n = cfg.n_channel_entries
    if mode == "mixed":
        mode = rnd.choice(("uniform", "flexible"))
    if mode == "uniform":
        return [rnd.choice(TRAINED_RATIOS)] * n
    return [rnd.choice(TRAINED_RATIOS) for _ in range(n)]


def arch_vector(ratios: list[float]) -> torch.Tensor:
    """One-hot of each layer's ratio over the trained ratios, concatenated: [4 * n_layers]."""
    out = torch.zeros(len(ratios), len(TRAINED_RATIOS))
    for i, r in enumerate(ratios):
        out[i, TRAINED_RATIOS.index(r)] = 1.0
    return out.flatten()


def arch_dim(cfg: GeneratorConfig) -> int:
    return cfg.n_channel_entries * len(TRAINED_RATIOS)


def widths(cfg: GeneratorConfig, ratios: list[float]) -> list[int]:
    return layer_widths(cfg, ratios)
