"""Conversions between generator tensors ([-1, 1], NCHW float) and 8-bit images."""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image


def to_255(img: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> float of whole numbers 0..255: the 8-bit values, same shape."""
    return ((img.detach().float().clamp(-1, 1) + 1) * 127.5).round()


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[3, H, W] or [N, 3, H, W] in [-1, 1] -> uint8 HWC (or NHWC)."""
    return to_255(img).to(torch.uint8).cpu().movedim(-3, -1).numpy()


def to_pil(img: torch.Tensor) -> Image.Image:
    return Image.fromarray(to_uint8(img))


def from_pil(img: Image.Image) -> torch.Tensor:
    """A Pillow image -> [3, H, W] float in [-1, 1] (converted to RGB)."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def grid(images: list[Image.Image], cols: int | None = None, pad: int = 2,
         background=(255, 255, 255)) -> Image.Image:
    """Lay equally sized images out in rows of `cols` (default: near-square)."""
    cols = cols or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    w, h = images[0].size
    out = Image.new("RGB", (cols * w + (cols + 1) * pad, rows * h + (rows + 1) * pad), background)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        out.paste(im, (pad + c * (w + pad), pad + r * (h + pad)))
    return out
