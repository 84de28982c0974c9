"""The crop rule a model was trained with, declared in its metadata under "alignment".

FFHQ's rule (ffhq-dataset, `recreate_aligned_images`), from five landmarks:
    e2e = right eye - left eye;  e2m = mouth centre - eye centre
    x = e2e - rot90(e2m), scaled to max(2 |e2e|, 1.8 |e2m|);  y = rot90(x)
    centre c = eye centre + 0.1 e2m;  the crop is the square c -+ x -+ y
Models trained on another layout declare the same rule with their own `scale` (multiplies the
half-side) and `shift` (the 0.1), and the face region the edit is blended back over (`mask_*`,
in crop coordinates 0..1).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from anycost.core.errors import AnycostError

LEFT_EYE, RIGHT_EYE, NOSE, MOUTH_LEFT, MOUTH_RIGHT = range(5)   # rows of a five-point landmark array


@dataclass(frozen=True)
class Recipe:
    name: str = "ffhq"
    scale: float = 1.0                               # x the FFHQ half-side (> 1: more around the face)
    shift: float = 0.1                               # crop centre = eye centre + shift * e2m
    # the blended face region: an ellipse, 0..1 of the crop; two values each, (x, y) (any length from metadata)
    mask_centre: tuple[float, ...] = (0.5, 0.54)
    mask_radii: tuple[float, ...] = (0.36, 0.45)
    mask_feather: float = 0.2                        # share of the radius over which the mask falls to 0

    def __post_init__(self):
        if self.name != "ffhq":
            raise AnycostError(f"unknown alignment recipe {self.name!r}; known: ffhq")
        if not (self.scale > 0 and 0 < self.mask_feather <= 1 and min(self.mask_radii) > 0):
            raise AnycostError(f"alignment recipe out of range: {self}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        try:
            return cls(name=str(d.get("name", "ffhq")), scale=float(d.get("scale", 1.0)),
                       shift=float(d.get("shift", 0.1)),
                       mask_centre=tuple(float(v) for v in d.get("mask_centre", (0.5, 0.54))),
                       mask_radii=tuple(float(v) for v in d.get("mask_radii", (0.36, 0.45))),
                       mask_feather=float(d.get("mask_feather", 0.2)))
        except (TypeError, ValueError, AttributeError) as e:
            raise AnycostError(f"the model's alignment metadata is malformed ({e}): {d!r}") from None

    def quad(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centre c, half-side vectors x (rightwards in the crop) and y (downwards), in source pixels."""
        p = np.asarray(points, dtype=np.float64)
        assert p.shape == (5, 2), p.shape
        eye_avg = (p[LEFT_EYE] + p[RIGHT_EYE]) / 2
        e2e = p[RIGHT_EYE] - p[LEFT_EYE]
        e2m = (p[MOUTH_LEFT] + p[MOUTH_RIGHT]) / 2 - eye_avg
        x = e2e - np.array([-e2m[1], e2m[0]])
        x = x / np.hypot(*x) * max(np.hypot(*e2e) * 2.0, np.hypot(*e2m) * 1.8) * self.scale
        y = np.array([-x[1], x[0]])
        return eye_avg + e2m * self.shift, x, y


def model_recipe(metadata: dict) -> Recipe | None:
    """The recipe a model declares; None: it declares none (projected as a plain crop)."""
    d = metadata.get("alignment")
    return Recipe.from_dict(d) if isinstance(d, dict) else None
