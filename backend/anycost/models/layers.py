"""StyleGAN2 building blocks with elastic channels, named as in the paper and the official code.

Module and parameter names match the official Anycost GAN / rosinality layout, so those state
dicts load without key mapping. Every layer takes the number of channels to use as an argument of
its forward call (the first k channels are used), never as a stored attribute, so concurrent calls
with different sub-generator configurations cannot interfere.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from anycost.models.ops import bias_lrelu, make_blur_kernel, modulated_conv2d, upfirdn2d


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: weights stored as N(0,1)/lr_mul, scaled at run time."""

    def __init__(
        self,
        in_dim: int,                 # Input features.
        out_dim: int,                # Output features.
        bias_init: float = 0.0,      # Initial bias value (1 for style modulations).
        lr_mul: float = 1.0,         # Learning-rate multiplier (0.01 in the mapping network).
        activation: bool = False,    # True = fused bias + sqrt(2)-gained leaky ReLU.
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor, out_features: int | None = None) -> torch.Tensor:
        """`out_features` keeps only the first rows (used by modulations of sliced layers)."""
        w: torch.Tensor = self.weight
        b: torch.Tensor = self.bias
        if out_features is not None:
            w, b = w[:out_features], b[:out_features]
        if self.activation:
            return bias_lrelu(F.linear(x, w * self.scale), b * self.lr_mul)
        return F.linear(x, w * self.scale, b * self.lr_mul)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]} -> {self.weight.shape[0]}, lr_mul={self.lr_mul}, act={self.activation}"


class Blur(nn.Module):
    """Depthwise FIR low-pass applied after the transposed conv of an upsampling layer."""

    kernel: torch.Tensor                             # buffer

    def __init__(self, kernel: Sequence[float], pad: tuple[int, int], gain: float = 1.0):
        super().__init__()
        self.register_buffer("kernel", make_blur_kernel(kernel, gain), persistent=False)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x FIR upsampling of the RGB skip path."""

    kernel: torch.Tensor                             # buffer

    def __init__(self, kernel: Sequence[float], factor: int = 2):
        super().__init__()
        self.register_buffer("kernel", make_blur_kernel(kernel, factor ** 2), persistent=False)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Style-modulated k x k convolution; weight [1, O, I, k, k] as in the official layout."""

    blur: Blur                                       # upsampling layers only

    def __init__(
        self,
        in_channels: int,            # Full input width; the equalised-LR scale is fixed from it.
        out_channels: int,           # Full output width.
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,      # Transposed conv (stride 2) followed by a blur.
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size ** 2)
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.upsample = upsample
        self.padding = kernel_size // 2
        if upsample:
            p = len(blur_kernel) - 2 - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + 1, p // 2 + 1), gain=4.0)

    def forward(self, x: torch.Tensor, style: torch.Tensor, out_channels: int | None = None,
                impl: str = "auto") -> torch.Tensor:
        in_ch = x.shape[1]
        out_ch = out_channels or self.weight.shape[1]
        styles = self.modulation(style, out_features=in_ch)                      # [N, I]
        weight = self.weight[0, :out_ch] * self.scale                            # [O, I_full, k, k]
        if self.upsample:
            x = modulated_conv2d(x, weight, styles, self.demodulate, up=True, impl=impl)
            return self.blur(x)
        return modulated_conv2d(x, weight, styles, self.demodulate, padding=self.padding, impl=impl)

    def extra_repr(self) -> str:
        _, o, i, k, _ = self.weight.shape
        return f"{i} -> {o}, k={k}, upsample={self.upsample}, demodulate={self.demodulate}"


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        return x if noise is None else x + self.weight * noise.to(x.dtype)


class FusedLeakyReLU(nn.Module):
    def __init__(self, channels: int, clamp: float | None = None):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.clamp = clamp                 # applied after the gain, as NVIDIA's bias_act does

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = bias_lrelu(x, self.bias)
        return x if self.clamp is None else x.clamp(-self.clamp, self.clamp)


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int, channels: int | None = None) -> torch.Tensor:
        x = self.input if channels is None else self.input[:, :channels]
        return x.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    """Modulated conv -> noise -> bias + leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 upsample: bool = False, blur_kernel: Sequence[float] = (1, 3, 3, 1), clamp: float | None = None):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim,
                                    upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channels, clamp)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None,
                out_channels: int | None = None, impl: str = "auto") -> torch.Tensor:
        x = self.conv(x, style, out_channels, impl=impl)
        return self.activate(self.noise(x, noise))


class ToRGB(nn.Module):
    """1x1 modulated conv (no demodulation) to RGB, added to the upsampled skip image."""

    upsample: Upsample                               # all but the first (4 px) one

    def __init__(self, in_channels: int, style_dim: int, upsample: bool = True,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1), clamp: float | None = None):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.clamp = clamp                 # this layer's output, before the skip image is added

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None,
                impl: str = "auto") -> torch.Tensor:
        out = self.conv(x, style, impl=impl) + self.bias.to(x.dtype)
        if self.clamp is not None:
            out = out.clamp(-self.clamp, self.clamp)
        if skip is not None:
            out = out + self.upsample(skip)
        return out
