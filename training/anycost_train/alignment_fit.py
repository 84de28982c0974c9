"""The face-crop rule of a model, fitted to where its own samples have their faces.

The FFHQ rule (anycost.editing.faces.recipes) with `scale` and `shift` chosen so that the model's samples,
aligned by their detected landmarks (mediapipe, samples upscaled to 256 px), come out where the
model draws them (the median over many samples: a photo's face is cropped the way the model frames
faces), and the blend mask the median extent of the face mesh, enlarged to reach past the jaw.
"""
from __future__ import annotations

import numpy as np
import torch

from anycost.editing.faces.geometry import Alignment
from anycost.editing.faces.recipes import Recipe

from .attributes import SIZE, AttributeMeter
from .directions import render, sample_w

MASK_MARGIN = 1.15    # the mask's ellipse, in mesh extents (its soft rim lies outside the face)


def fit_recipe(g, samples: int = 400, seed: int = 0) -> tuple[Recipe, dict]:
    """The recipe, and how well it fits: the spread of the per-sample values."""
    w = sample_w(g, samples, seed)
    images = render(g, w[:, None].expand(-1, g.n_style, -1))
    meter = AttributeMeter(need_age=False)
    try:
        detected = [meter.detector.detect(np.ascontiguousarray(p)) for p in meter.photos(images)]
    finally:
        meter.close()
    faces = [f[0] for f in detected if f]
    if len(faces) < max(10, samples // 4):
        raise RuntimeError(f"a face was found in only {len(faces)} of {samples} samples: the model does not "
                           "draw faces the detector knows, so no crop rule can be fitted")
    centre = np.array([SIZE / 2, SIZE / 2])
    shifts, scales = [], []
    for f in faces:
        pts = f.points
        eye_avg = (pts[0] + pts[1]) / 2
        e2m = (pts[3] + pts[4]) / 2 - eye_avg
        shifts.append(float((centre - eye_avg) @ e2m / (e2m @ e2m)))
        _, x, _ = Recipe().quad(pts)
        scales.append(SIZE / 2 / float(np.hypot(*x)))
    base = Recipe(scale=round(float(np.median(scales)), 4), shift=round(float(np.median(shifts)), 4))
    centres, radii = [], []
    for f in faces:
        a = Alignment.from_landmarks(f.points, base, SIZE)
        mesh = a.to_crop(f.mesh[:, :2]) / SIZE
        lo, hi = mesh.min(0), mesh.max(0)
        centres.append((lo + hi) / 2)
        radii.append((hi - lo) / 2)
    c, r = np.median(centres, axis=0), np.median(radii, axis=0) * MASK_MARGIN
    recipe = Recipe(scale=base.scale, shift=base.shift, mask_centre=tuple(round(float(v), 4) for v in c),
                    mask_radii=tuple(round(float(min(v, 0.55)), 4) for v in r))
    spread = {"shift_iqr": [round(float(v), 4) for v in np.percentile(shifts, [25, 75])],
              "scale_iqr": [round(float(v), 4) for v in np.percentile(scales, [25, 75])],
              "samples": samples, "faces_found": len(faces)}
    return recipe, spread


@torch.no_grad()
def fit_model_file(path, samples: int = 400) -> dict:
    """Fit the recipe of the model file at `path` and write it into the file's metadata."""
    from anycost.formats.checkpoints import load_model, read_container, write_container
    recipe, spread = fit_recipe(load_model(path).generator.eval(), samples)
    tensors, meta = read_container(path)
    meta["alignment"] = {**recipe.to_dict(), "fitted": spread}
    write_container(path, tensors, meta)
    return meta["alignment"]
