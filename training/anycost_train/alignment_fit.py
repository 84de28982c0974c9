"""The alignment recipe of a model trained on procedural faces, fitted to the renderer's own layout.

The FFHQ rule (anycost.faces.recipes) with `scale` and `shift` chosen so that the renderer's faces,
aligned by their true landmarks, come out where the renderer draws them (the median over many
faces), and the blend mask the median face ellipse, enlarged to reach past the jaw and ears.
"""
from __future__ import annotations

import random

import numpy as np

from anycost.faces.geometry import Alignment
from anycost.faces.recipes import Recipe

from .faces import landmarks, sample_params

MASK_MARGIN = 1.2     # the mask's ellipse, in face ellipses (its soft rim lies outside the face)


def fit_recipe(samples: int = 2000, seed: int = 0) -> tuple[Recipe, dict]:
    """The recipe, and how well it fits: the median crop of the renderer's faces vs the image."""
    rng = random.Random(seed)
    shifts, scales, params = [], [], []
    for _ in range(samples):
        p = sample_params(rng)
        pts = landmarks(p, 256)
        eye_avg = (pts[0] + pts[1]) / 2
        e2m = (pts[3] + pts[4]) / 2 - eye_avg
        shifts.append(float((np.array([128.0, 128.0]) - eye_avg) @ e2m / (e2m @ e2m)))
        _, x, _ = Recipe().quad(pts)
        scales.append(128.0 / float(np.hypot(*x)))
        params.append((p, pts))
    shift, scale = float(np.median(shifts)), float(np.median(scales))
    base = Recipe(scale=round(scale, 4), shift=round(shift, 4))
    centres, radii = [], []
    for p, pts in params:
        a = Alignment.from_landmarks(pts, base, 256)
        centres.append(a.to_crop(np.array([[128 + 10 * p.yaw, 124.0]]))[0] / 256)
        size = np.array([58 * p.face_width, 74 * p.face_height]) * p.scale
        radii.append(size / a.photo_px_per_crop_px / 256)
    centre, radius = np.median(centres, axis=0), np.median(radii, axis=0) * MASK_MARGIN
    recipe = Recipe(scale=base.scale, shift=base.shift, mask_centre=tuple(round(float(v), 4) for v in centre),
                    mask_radii=tuple(round(float(v), 4) for v in radius))
    spread = {"shift_iqr": [round(float(v), 4) for v in np.percentile(shifts, [25, 75])],
              "scale_iqr": [round(float(v), 4) for v in np.percentile(scales, [25, 75])], "samples": samples}
    return recipe, spread
