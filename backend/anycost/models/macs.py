"""Multiply-accumulate counts of a generator configuration (channels x resolution), computed from
the architecture alone.

Two conventions are reported:
- `true`: every multiply-accumulate the layers perform, as torch's FlopCounterMode counts them
  (a stride-2 transposed conv costs k*k MACs per *input* pixel);
- `paper`: the convention of the Anycost paper's tables (torchprofile), which counts a stride-2
  transposed conv at its (2H+1)^2 output size, about 4x the true cost of those layers. For
  config-f at 1024 px this gives 144.1 G against the paper's 144.4 G (the small rest is ops
  torchprofile also counts); the true count, 75.4 G, matches FlopCounterMode exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

from anycost.models.channels import ChannelSpec, resolve_channels
from anycost.models.config import GeneratorConfig


@dataclass(frozen=True)
class MacCount:
    true: int     # real multiply-accumulates per image
    paper: int    # the paper's convention (transposed convs counted at output resolution)
    mapping: int  # the mapping network's share (included in both; zero when the input is w)


def count_macs(cfg: GeneratorConfig, channels: ChannelSpec = None, target_res: int | None = None,
               include_mapping: bool = True) -> MacCount:
    """MACs per image for one sub-generator; blocks above `target_res` are not counted (not run)."""
    widths = resolve_channels(cfg, channels) or cfg.full_channels
    target = target_res or cfg.resolution
    sd = cfg.style_dim
    k_blur = len(cfg.blur_kernel) ** 2
    mapping = cfg.n_mlp * sd * sd if include_mapping else 0
    true = paper = mapping

    def styled(c_in, c_out, res, up):
        nonlocal true, paper
        mod = sd * c_in                                # style -> input scales (only used rows)
        if up:                                         # transposed 3x3, stride 2, then the FIR blur
            conv = (res // 2) ** 2 * c_in * c_out * 9
            blur = res * res * c_out * k_blur
            true += mod + conv + blur
            paper += mod + (res + 1) ** 2 * c_in * c_out * 9 + blur
        else:
            conv = res * res * c_in * c_out * 9
            true += mod + conv
            paper += mod + conv

    def to_rgb(c_in, res, upsample_skip):
        nonlocal true, paper
        cost = sd * c_in + res * res * c_in * 3 + (res * res * 3 * k_blur if upsample_skip else 0)
        true += cost
        paper += cost

    styled(widths[0], widths[1], 4, up=False)
    to_rgb(widths[1], 4, upsample_skip=False)
    for j, res in enumerate(cfg.levels[1:]):
        if res > target:
            break
        styled(widths[2 * j + 1], widths[2 * j + 2], res, up=True)
        styled(widths[2 * j + 2], widths[2 * j + 3], res, up=False)
        to_rgb(widths[2 * j + 3], res, upsample_skip=True)
    return MacCount(true=true, paper=paper, mapping=mapping)
