"""The soft face mask and the compositing of an edit into the photo.

The mask is the recipe's ellipse in crop coordinates, falling smoothly to 0 at its rim, drawn in
photo pixels through the alignment. Where it is 0 the photo's pixels are kept bit for bit.
"""
from __future__ import annotations

import numpy as np
import torch

from anycost.editing.faces.geometry import Alignment, Rect, apply
from anycost.editing.faces.recipes import Recipe


def mask_rect(alignment: Alignment, recipe: Recipe, bounds: Rect) -> Rect | None:
    """The photo rectangle holding the mask, inside `bounds`; None when they do not meet."""
    t = np.linspace(0, 2 * np.pi, 128, endpoint=False)
    (cx, cy), (ax, ay) = recipe.mask_centre, recipe.mask_radii
    rim = np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], axis=1) * alignment.size
    p = alignment.to_photo(rim)
    bx, by, bw, bh = bounds
    x0, y0 = max(bx, int(np.floor(p[:, 0].min())) - 1), max(by, int(np.floor(p[:, 1].min())) - 1)
    x1, y1 = min(bx + bw, int(np.ceil(p[:, 0].max())) + 1), min(by + bh, int(np.ceil(p[:, 1].max())) + 1)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return x0, y0, x1 - x0, y1 - y0


def face_mask(alignment: Alignment, recipe: Recipe, rect: Rect) -> np.ndarray:
    """float32 [h, w] in [0, 1] over `rect` of the photo: 1 inside the face, smooth to 0 at the rim."""
    x, y, w, h = rect
    gx, gy = np.meshgrid(np.arange(x, x + w) + 0.5, np.arange(y, y + h) + 0.5)
    q = apply(alignment.matrix, np.stack([gx.ravel(), gy.ravel()], axis=1)) / alignment.size
    (cx, cy), (ax, ay) = recipe.mask_centre, recipe.mask_radii
    d = np.sqrt(((q[:, 0] - cx) / ax) ** 2 + ((q[:, 1] - cy) / ay) ** 2)
    t = np.clip((1 - d) / recipe.mask_feather, 0, 1)
    return (t * t * (3 - 2 * t)).reshape(h, w).astype(np.float32)      # smoothstep


def blend_255(original: torch.Tensor, edited: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """original + mask * (edited - original) for float [3, h, w] 0..255 images (whole numbers) and a
    [h, w] mask -> uint8 [h, w, 3]. Where the mask is 0 the sum adds exactly 0.0 to a whole number:
    the original's value, bit for bit."""
    out = torch.addcmul(original, mask[None], edited - original).round_()
    return out.to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def composite(original: np.ndarray, edited: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Two uint8 [h, w, 3] images blended by a [h, w] mask; exactly `original` where the mask is 0."""
    assert original.shape == edited.shape and original.shape[:2] == mask.shape, \
        (original.shape, edited.shape, mask.shape)
    def chw(a):
        return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float()
    return blend_255(chw(original), chw(edited), torch.from_numpy(mask).float())
