"""Conversions between generator tensors ([-1, 1], NCHW float) and 8-bit images."""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from anycost.protocol import messages as P


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


# ------------------------------------------------------------------ protocol images

def decode_image(image: P.Image) -> Image.Image:
    mode = "RGBA" if image.mode == "RGBA8" else "RGB"
    return Image.frombytes(mode, (image.w, image.h), image.data).convert("RGB")


def encode_pixels(px: np.ndarray) -> P.Image:
    """uint8 [h, w, 3] -> RGB8."""
    return P.Image(px.shape[1], px.shape[0], "RGB8", np.ascontiguousarray(px).tobytes())


def encode_image(img: torch.Tensor, size: tuple[int, int] | None = None) -> P.Image:
    """[1, 3, H, W] in [-1, 1] -> RGB8, resized to `size` (w, h) when given."""
    pil = to_pil(img[0])
    if size is not None and tuple(size) != pil.size:
        # size: [w, h] (a list when it came in a message); PIL sets its filter names in a loop
        pil = pil.resize(tuple(size), Image.LANCZOS)  # type: ignore[arg-type, attr-defined]
    return P.Image(pil.width, pil.height, "RGB8", pil.tobytes())
