"""Low-level ops of the StyleGAN2 family, in plain PyTorch (runs on any device, no compiled extension).

Each op has one obvious reference form; where a faster but equivalent form exists (see
`modulated_conv2d`), the `impl` argument picks it and tests compare the two.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


def make_blur_kernel(taps: Sequence[float], gain: float = 1.0) -> torch.Tensor:
    """Separable FIR kernel (outer product of `taps`), normalised to sum to `gain`."""
    k = torch.tensor(list(taps), dtype=torch.float32)
    k = k[None, :] * k[:, None] if k.ndim == 1 else k
    return k / k.sum() * gain


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with a 2-D FIR `kernel`, then decimate.

    x: [N, C, H, W]. `pad` = (before, after), applied to both spatial axes, as in StyleGAN2.
    The kernel is applied as a true convolution (flipped), which only matters for asymmetric kernels.
    """
    n, c, h, w = x.shape
    if up > 1:  # zero insertion: each pixel followed by (up-1) zeros along each axis
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(n, c, h * up, w * up)
    p0, p1 = pad
    assert p0 >= 0 and p1 >= 0, "only non-negative padding is used by these networks"
    x = F.pad(x, (p0, p1, p0, p1))
    weight = kernel.flip([0, 1]).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    x = F.conv2d(x, weight, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def bias_lrelu(x: torch.Tensor, bias: torch.Tensor | None, negative_slope: float = 0.2,
               gain: float = SQRT2) -> torch.Tensor:
    """StyleGAN2's fused bias + leaky ReLU: gain * lrelu(x + b). The bias is sliced to x's channels."""
    if bias is not None:
        b = bias[: x.shape[1]].to(x.dtype)
        x = x + b.reshape(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, negative_slope) * gain


def modulated_conv2d(
    x: torch.Tensor,          # [N, I, H, W] input features (I may be fewer than the weight's inputs)
    weight: torch.Tensor,     # [O, I_full, k, k] already scaled by the equalised-LR constant
    styles: torch.Tensor,     # [N, I] per-sample input-channel scales
    demodulate: bool = True,
    up: bool = False,         # transposed conv, stride 2 (the blur is applied by the caller)
    padding: int = 0,
    impl: str = "auto",       # "grouped" (reference) | "weight" | "activation" | "auto"
) -> torch.Tensor:
    """StyleGAN2 modulated convolution with demodulation over the channels actually used.

    "grouped" is the reference (per-sample weights, grouped conv, as in the official code);
    "weight" modulates the weight and runs a plain conv (batch 1 only); "activation" scales the
    input, runs one shared conv and scales the output (any batch). They agree up to float rounding.
    """
    n, i = x.shape[:2]
    o, _, k, _ = weight.shape
    w = weight[:, :i]
    assert styles.shape == (n, i), (styles.shape, (n, i))
    if impl == "auto":
        impl = "weight" if n == 1 else "activation"

    dcoefs = None
    if demodulate:  # [N, O]
        dcoefs = torch.rsqrt((w.square().sum(dim=[2, 3])[None] * styles.square()[:, None]).sum(dim=2) + 1e-8)

    if impl == "activation":
        x = x * styles.to(x.dtype)[:, :, None, None]
        x = _conv(x, w, up, padding)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype)[:, :, None, None]
        return x

    ww = w[None] * styles[:, None, :, None, None]  # [N, O, I, k, k]
    if dcoefs is not None:
        ww = ww * dcoefs[:, :, None, None, None]
    if impl == "weight":
        assert n == 1, "impl='weight' needs batch 1"
        return _conv(x, ww[0], up, padding)
    if impl != "grouped":
        raise ValueError(f"unknown modulated_conv2d impl {impl!r}")
    x = x.reshape(1, n * i, *x.shape[2:])
    out = _conv(x, ww.reshape(n * o, i, k, k), up, padding, groups=n)
    return out.reshape(n, o, *out.shape[2:])


def _conv(x: torch.Tensor, w: torch.Tensor, up: bool, padding: int, groups: int = 1) -> torch.Tensor:
    w = w.to(x.dtype)
    if not up:
        return F.conv2d(x, w, padding=padding, groups=groups)
    # conv_transpose wants [I, O/groups, k, k]
    o_per_group = w.shape[0] // groups
    wt = w.reshape(groups, o_per_group, *w.shape[1:]).transpose(1, 2)
    wt = wt.reshape(groups * w.shape[1], o_per_group, *w.shape[2:])
    return F.conv_transpose2d(x, wt, stride=2, padding=0, groups=groups)
