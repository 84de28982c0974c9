"""The aligned crop as a similarity transform, and the warps photo -> crop and crop -> photo.

Coordinates are continuous pixels: pixel (i, j) covers [i, i+1) x [j, j+1), its centre at +0.5.
`Alignment.matrix` maps photo coordinates to crop coordinates of a `size` x `size` crop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from anycost.editing.faces.recipes import Recipe

Rect = tuple[int, int, int, int]    # x, y, w, h


@dataclass(frozen=True)
class Alignment:
    matrix: np.ndarray     # [2, 3] float64: photo -> crop
    size: int              # side of the crop the matrix maps to

    @classmethod
    def from_landmarks(cls, points: np.ndarray, recipe: Recipe, size: int) -> "Alignment":
        c, x, y = recipe.quad(points)
        linear = size / (2 * float(x @ x)) * np.stack([x, y])    # x -> (size/2, 0), y -> (0, size/2)
        return cls(np.concatenate([linear, (size / 2 - linear @ c)[:, None]], axis=1), size)

    @property
    def inverse(self) -> np.ndarray:
        """[2, 3]: crop -> photo."""
        inv = np.linalg.inv(self.matrix[:, :2])
        return np.concatenate([inv, (-inv @ self.matrix[:, 2])[:, None]], axis=1)

    @property
    def photo_px_per_crop_px(self) -> float:
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2])))) ** -1

    @property
    def face_side(self) -> float:
        """The crop's side in photo pixels."""
        return self.size * self.photo_px_per_crop_px

    @property
    def roll_degrees(self) -> float:
        """How far the face is turned in the picture plane: the eye line's angle, clockwise on screen."""
        return float(np.degrees(np.arctan2(self.matrix[0, 1], self.matrix[0, 0])))

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        return apply(self.matrix, points)

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        return apply(self.inverse, points)

    def corners(self) -> np.ndarray:
        """The crop's corners in the photo: top-left, top-right, bottom-right, bottom-left."""
        s = self.size
        return self.to_photo(np.array([[0, 0], [s, 0], [s, s], [0, s]], dtype=np.float64))

    def to_dict(self) -> dict:
        return {"matrix": [float(v) for v in self.matrix.ravel()], "size": self.size}

    @classmethod
    def from_dict(cls, d: dict) -> "Alignment":
        return cls(np.asarray(d["matrix"], dtype=np.float64).reshape(2, 3), int(d["size"]))


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    return p @ matrix[:, :2].T + matrix[:, 2]


def _grid(inverse: np.ndarray, xs: np.ndarray, ys: np.ndarray, width: int, height: int) -> torch.Tensor:
    """grid_sample's grid: destination pixel centres mapped by `inverse` into a width x height source."""
    gx, gy = np.meshgrid(xs + 0.5, ys + 0.5)
    src = apply(inverse, np.stack([gx.ravel(), gy.ravel()], axis=1))
    norm = src / np.array([width, height]) * 2 - 1
    return torch.from_numpy(norm.reshape(1, len(ys), len(xs), 2).astype(np.float32))


def warp_to_crop(photo: np.ndarray, alignment: Alignment) -> np.ndarray:
    """The aligned crop (uint8 [size, size, 3]) of a uint8 [H, W, 3] photo. The photo is first
    box-reduced towards the crop's scale and the crop sampled at twice its size, then averaged:
    no aliasing from large faces. Parts of the square outside the photo are mirrored in."""
    h, w = photo.shape[:2]
    corners = alignment.corners()
    f = alignment.photo_px_per_crop_px
    k = max(1, int(f))
    margin = 2 * k + 2
    x0, y0 = (max(0, int(np.floor(corners[:, i].min())) - margin) for i in (0, 1))
    x1 = min(w, int(np.ceil(corners[:, 0].max())) + margin)
    y1 = min(h, int(np.ceil(corners[:, 1].max())) + margin)
    if x1 - x0 < 2 or y1 - y0 < 2:       # the square lies (almost) outside the photo: mirror it all
        x0, y0, x1, y1 = 0, 0, w, h
    part = Image.fromarray(photo[y0:y1, x0:x1])
    if k > 1:
        part = part.reduce(k)
    scale_x, scale_y = (x1 - x0) / part.width, (y1 - y0) / part.height
    # crop -> part coordinates: photo = inverse(crop); part = (photo - origin) / scale
    inverse = alignment.inverse.copy()
    inverse[0] = (inverse[0] - np.array([0, 0, x0])) / scale_x
    inverse[1] = (inverse[1] - np.array([0, 0, y0])) / scale_y
    s = alignment.size
    sub = np.arange(2 * s) / 2.0                      # two samples per crop pixel, then averaged
    grid = _grid(inverse, sub - 0.25, sub - 0.25, part.width, part.height)
    src = torch.from_numpy(np.asarray(part, dtype=np.float32)).permute(2, 0, 1)[None]
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    out = F.avg_pool2d(out, 2)
    return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def back_grid(alignment: Alignment, rect: Rect) -> torch.Tensor:
    """grid_sample's grid from `rect` of the photo into the crop, for a render of any size."""
    x, y, w, h = rect
    return _grid(alignment.matrix / alignment.size, np.arange(x, x + w, dtype=np.float64),
                 np.arange(y, y + h, dtype=np.float64), 1, 1)


def warp_back(render: torch.Tensor, alignment: Alignment, rect: Rect, grid: torch.Tensor | None = None) -> torch.Tensor:
    """A render of the crop ([1, 3, r, r], any r) drawn over `rect` of the photo -> [3, h, w].
    A render larger than its footprint in the photo is reduced first (antialiased). `grid`:
    `back_grid(alignment, rect)`, when kept from an earlier call."""
    assert render.ndim == 4 and render.shape[0] == 1 and render.shape[2] == render.shape[3], render.shape
    footprint = max(2, int(round(alignment.face_side)))
    if render.shape[-1] > 1.5 * footprint:
        render = F.interpolate(render.float(), size=(footprint, footprint), mode="bilinear", antialias=True,
                               align_corners=False)
    grid = back_grid(alignment, rect) if grid is None else grid
    out = F.grid_sample(render.float(), grid.to(render.device), mode="bilinear", padding_mode="border",
                        align_corners=False)
    return out[0]
