"""How far the detected alignment is from the true one, on procedural faces with known landmarks.

Each face is painted by the renderer, then scaled, turned and placed at random in a larger canvas
(a photo of its own background); the detector aligns it, and the five true landmarks are mapped
through both the detected alignment and the alignment made from the true landmarks. The error is
their distance in pixels of the aligned crop.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import cast

import numpy as np
from PIL import Image

from anycost.editing.faces.geometry import Alignment
from anycost.editing.faces.photo import FaceError, align_photo
from anycost.editing.faces.recipes import Recipe

from .procedural_faces import draw_face, landmarks, sample_params

CANVAS = (960, 720)
FACE_PX = 256


@dataclass
class PlacedFace:
    photo: np.ndarray          # uint8 [H, W, 3]
    points: np.ndarray         # [5, 2] true landmarks in the photo
    scale: float
    degrees: float


def turn_and_place(image: Image.Image, scale: float, degrees: float, canvas: tuple[int, int], centre,
                   background) -> tuple[np.ndarray, np.ndarray]:
    """`image` scaled, turned `degrees` clockwise on screen and centred at `centre` of a `canvas`-sized
    photo filled with `background`; returns the photo (uint8) and the [2, 3] map from image to photo
    coordinates."""
    a = math.radians(degrees)
    linear = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    shift = np.asarray(centre, dtype=np.float64) - linear @ (np.array(image.size) / 2)
    inv = np.linalg.inv(linear)
    coeffs = (*inv[0], -inv[0] @ shift, *inv[1], -inv[1] @ shift)        # Pillow maps photo -> image
    # PIL sets its filter names (Image.LANCZOS, ...) in a loop: mypy cannot see them
    mask = Image.new("L", image.size, 255).transform(canvas, Image.AFFINE, coeffs,  # type: ignore[attr-defined]
                                                     resample=Image.BILINEAR)  # type: ignore[attr-defined]
    layer = image.convert("RGB").transform(canvas, Image.AFFINE, coeffs,  # type: ignore[attr-defined]
                                           resample=Image.BICUBIC)  # type: ignore[attr-defined]
    photo = Image.composite(layer, Image.new("RGB", canvas, tuple(background)), mask)
    return np.asarray(photo), np.concatenate([linear, shift[:, None]], axis=1)


def placed_face(seed: int, scale_range=(0.6, 2.2), max_degrees: float = 30.0) -> PlacedFace:
    """A procedural face at a random scale, rotation and position in a CANVAS-sized photo."""
    rng = random.Random(seed)
    p = sample_params(rng)
    face = draw_face(p, FACE_PX)
    scale, degrees = rng.uniform(*scale_range), rng.uniform(-max_degrees, max_degrees)
    side = FACE_PX * scale
    # the face's square, turned: keep all of it inside the canvas
    reach = side * (abs(math.cos(math.radians(degrees))) + abs(math.sin(math.radians(degrees)))) / 2
    cx, cy = rng.uniform(reach, CANVAS[0] - reach), rng.uniform(reach, CANVAS[1] - reach)
    background = tuple(int(v * 0.8) for v in cast("tuple[int, ...]", face.getpixel((2, 2))))   # an RGB pixel
    photo, fwd = turn_and_place(face, scale, degrees, CANVAS, (cx, cy), background)
    return PlacedFace(photo, landmarks(p, FACE_PX) @ fwd[:, :2].T + fwd[:, 2], scale, degrees)


def alignment_errors(recipe: Recipe, resolution: int, detector, n: int, seed: int = 0) -> dict:
    """Per face: mean landmark error (crop pixels) of the detected alignment; plus the misses."""
    errors, misses = [], []
    for i in range(n):
        f = placed_face(seed + i)
        try:
            got = align_photo(f.photo, recipe, resolution, detector)
        except FaceError as e:
            misses.append({"seed": seed + i, "why": str(e)})
            continue
        truth = Alignment.from_landmarks(f.points, recipe, resolution)
        errors.append(float(np.linalg.norm(got.alignment.to_crop(f.points) - truth.to_crop(f.points), axis=1).mean()))
    errs = np.array(errors)
    return {"recipe": recipe.to_dict(), "resolution": resolution, "faces": n, "found": len(errors),
            "mean_px": round(float(errs.mean()), 3) if len(errs) else None,
            "median_px": round(float(np.median(errs)), 3) if len(errs) else None,
            "p90_px": round(float(np.percentile(errs, 90)), 3) if len(errs) else None,
            "max_px": round(float(errs.max()), 3) if len(errs) else None,
            "mean_share_of_crop": round(float(errs.mean()) / resolution, 5) if len(errs) else None,
            "misses": misses}
