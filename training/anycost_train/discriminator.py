"""Multi-resolution discriminator, optionally conditioned on the generator's channel configuration.

An image of resolution r enters through the fromRGB of its level and runs the shared residual
blocks from there down to 4x4 (Anycost GAN, L_multi-res). With `cond_dim`, the last blocks modulate
their features by the sub-generator's architecture vector (a one-hot of each layer's channel ratio):
x * (1 + gamma(arch)) + beta(arch) per channel (the paper's generator-conditioned discriminator).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from anycost.models.config import GeneratorConfig
from anycost.models.layers import Blur, EqualLinear
from anycost.models.ops import bias_lrelu


class EqualConv2d(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, k: int, stride: int = 1, padding: int = 0, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, k, k))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = 1 / math.sqrt(in_ch * k * k)
        self.stride, self.padding = stride, padding

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class ArchModulation(nn.Module):
    """x * (1 + gamma(arch)) + beta(arch), per channel; zero-initialised so it starts as identity."""

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.gamma = nn.Linear(cond_dim, channels)
        self.beta = nn.Linear(cond_dim, channels)
        for lin in (self.gamma, self.beta):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x, arch):
        return x * (1 + self.gamma(arch)[:, :, None, None]) + self.beta(arch)[:, :, None, None]


class ConvLayer(nn.Module):
    """[blur + stride-2 downsample] conv, optional arch modulation, optional bias + leaky ReLU."""

    def __init__(self, in_ch, out_ch, k, downsample=False, activate=True, cond_dim=None,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        self.blur = None
        if downsample:
            p = len(blur_kernel) - 2 + (k - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2, p // 2))
        self.conv = EqualConv2d(in_ch, out_ch, k, stride=2 if downsample else 1,
                                padding=0 if downsample else k // 2, bias=not activate)
        self.mod = ArchModulation(cond_dim, out_ch) if cond_dim else None
        self.act_bias = nn.Parameter(torch.zeros(out_ch)) if activate else None

    def forward(self, x, arch=None):
        if self.blur is not None:
            x = self.blur(x)
        x = self.conv(x)
        if self.mod is not None:
            x = self.mod(x, arch)
        return bias_lrelu(x, self.act_bias) if self.act_bias is not None else x


class ResBlock(nn.Module):
    def __init__(self, in_ch, out_ch, cond_dim=None):
        super().__init__()
        self.conv1 = ConvLayer(in_ch, in_ch, 3, cond_dim=cond_dim)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True, cond_dim=cond_dim)
        self.skip = ConvLayer(in_ch, out_ch, 1, downsample=True, activate=False, cond_dim=cond_dim)

    def forward(self, x, arch=None):
        out = self.conv2(self.conv1(x, arch), arch)
        return (out + self.skip(x, arch)) / math.sqrt(2)


class MultiResDiscriminator(nn.Module):
    def __init__(
        self,
        cfg: GeneratorConfig,          # the generator it judges: resolution and widths per level
        n_res: int = 4,                # fromRGB entry points: the last n_res levels
        cond_dim: int | None = None,   # architecture-vector length; None = unconditioned
        cond_blocks: int = 2,          # how many of the last blocks are conditioned
        stddev_group: int = 4,
    ):
        super().__init__()
        ch = cfg.channels
        self.resolutions = cfg.levels[::-1][:n_res]                 # e.g. [128, 64, 32, 16]
        self.from_rgbs = nn.ModuleDict({str(r): ConvLayer(3, ch[r], 1) for r in self.resolutions})
        levels = cfg.levels[::-1][:-1]                              # R .. 8: each block halves
        self.blocks = nn.ModuleDict({
            str(r): ResBlock(ch[r], ch[r // 2], cond_dim if i >= len(levels) - cond_blocks else None)
            for i, r in enumerate(levels)})
        self.stddev_group = stddev_group
        c4 = ch[4]
        self.final_conv = ConvLayer(c4 + 1, c4, 3)
        self.final_linear = EqualLinear(c4 * 16, c4, activation=True)
        self.out = EqualLinear(c4, 1)
        self.cond_dim = cond_dim

    def forward(self, img: torch.Tensor, arch: torch.Tensor | None = None) -> torch.Tensor:
        r = img.shape[-1]
        if r not in self.resolutions:
            raise ValueError(f"discriminator takes {self.resolutions} px, got {r}")
        if self.cond_dim and (arch is None or arch.shape != (img.shape[0], self.cond_dim)):
            raise ValueError(f"a conditioned discriminator needs arch [{img.shape[0]}, {self.cond_dim}]")
        x = self.from_rgbs[str(r)](img)
        while r > 4:
            x = self.blocks[str(r)](x, arch)
            r //= 2
        x = self._stddev(x)
        x = self.final_conv(x).flatten(1)
        return self.out(self.final_linear(x)).squeeze(1)

    def _stddev(self, x):
        n, c, h, w = x.shape
        g = min(n, self.stddev_group)
        while n % g:
            g -= 1
        y = x.reshape(g, -1, 1, c, h, w)
        y = (y.var(0, unbiased=False) + 1e-8).sqrt().mean(dim=(2, 3, 4))   # [n/g, 1]
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], 1)
