"""A photo -> the aligned crop a model projects, and back: its render composited into the photo.

`align_photo` finds the faces, picks one (the largest unless told), checks it suits the model and
returns an `AlignedFace`: the crop, the transform, and the photo rectangle an edit may change.
`Blend` warps a render (any preview size, or the final) back over that rectangle and blends it
in with the soft face mask. `projection_target` is the step the daemon's `open` and the CLI's
`project` share: a photo and a region -> what to project, aligned or as it is.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from anycost.core.errors import AnycostError
from anycost.core.imaging import to_255
from anycost.editing.faces.blending import blend_255, face_mask, mask_rect
from anycost.editing.faces.detection import DetectedFace, FaceDetector
from anycost.editing.faces.geometry import Alignment, Rect, back_grid, warp_back, warp_to_crop
from anycost.editing.faces.recipes import Recipe

MAX_YAW = 40.0            # degrees: more turned than this is a profile the recipe cannot frame
# The face's crop must span max(MIN_FACE_PX, resolution / MAX_UPSCALE) photo pixels: below that the
# landmarks are a few pixels apart and the model sees mostly interpolation.
MIN_FACE_PX, MAX_UPSCALE = 64, 8


class FaceError(AnycostError):
    """No usable face: none found, the chosen one too small, in profile, or out of range."""


@dataclass
class AlignedFace:
    alignment: Alignment      # photo -> crop at the model's resolution
    recipe: Recipe
    rect: Rect                # the photo pixels the edit may change (the mask's extent, inside the bounds)
    faces: list[DetectedFace]
    index: int                # which of `faces` this is
    crop: np.ndarray | None = None   # uint8 [R, R, 3]: what the model projects

    def describe(self) -> dict:
        """For the user (protocol replies, CLI): the faces found, which one, where, how large."""
        return {"faces": [f.describe() for f in self.faces], "face": self.index, "region": list(self.rect),
                "face_px": round(self.alignment.face_side, 1), "roll": round(self.alignment.roll_degrees, 1),
                **self.alignment.to_dict()}

    def record(self) -> dict:
        """What a session keeps to put renders back (JSON)."""
        return {"alignment": self.alignment.to_dict(), "recipe": self.recipe.to_dict(), "rect": list(self.rect),
                "face": self.index, "faces": [f.describe() for f in self.faces]}

    @classmethod
    def from_record(cls, d: dict) -> "AlignedFace":
        return cls(Alignment.from_dict(d["alignment"]), Recipe.from_dict(d["recipe"]), tuple(d["rect"]), [],
                   int(d["face"]))


class Blend:
    """Puts renders of one aligned face back into its photo; keeps the mask and the warp's grid,
    which do not depend on the render's size, so a preview costs one resample and one blend."""

    def __init__(self, face: AlignedFace, original: np.ndarray):
        x, y, w, h = face.rect
        assert original.shape == (h, w, 3) and original.dtype == np.uint8, (original.shape, face.rect)
        self.face, self.original = face, original
        self.mask = face_mask(face.alignment, face.recipe, face.rect)
        self.grid = back_grid(face.alignment, face.rect)
        self._original = torch.from_numpy(original).permute(2, 0, 1).float()
        self._mask = torch.from_numpy(self.mask)
        self.last_ms = 0.0        # the last call's time: the daemon leaves it out of the preview budget

    def __call__(self, render: torch.Tensor) -> np.ndarray:
        """[1, 3, r, r] in [-1, 1] -> uint8 [h, w, 3]: the photo's rectangle with the face replaced."""
        t0 = time.perf_counter()
        edited = to_255(warp_back(render, self.face.alignment, self.face.rect, self.grid)).cpu()
        out = blend_255(self._original, edited, self._mask)
        self.last_ms = (time.perf_counter() - t0) * 1000
        return out


@dataclass
class ProjectionTarget:
    crop: Image.Image                 # RGB at the model's resolution: what is projected
    rect: Rect                        # the photo pixels an edit may change
    aligned: AlignedFace | None       # None: the region was taken as it is
    original: np.ndarray | None       # an aligned face's photo pixels under `rect` (uint8 [h, w, 3])

    def blend(self) -> Blend | None:
        return None if self.aligned is None or self.original is None else Blend(self.aligned, self.original)


def projection_target(photo: Image.Image, region: Rect, resolution: int, recipe: Recipe | None = None,
                      detector: FaceDetector | None = None, face: int | None = None) -> ProjectionTarget:
    """With a `recipe` (and its `detector`): the face in `region` aligned as the model was trained
    (FaceError when there is none it can use). Without: the region resized to the model's square."""
    x, y, w, h = region
    if recipe is None:
        # PIL sets its filter names (Image.LANCZOS, ...) in a loop: mypy cannot see them
        crop = photo.crop((x, y, x + w, y + h)).resize((resolution, resolution), Image.LANCZOS)  # type: ignore[attr-defined]
        return ProjectionTarget(crop, region, None, None)
    assert detector is not None, "aligning needs a face detector"
    pixels = np.asarray(photo.convert("RGB"))
    aligned = align_photo(pixels, recipe, resolution, detector, region, face)
    assert aligned.crop is not None                 # align_photo always makes the crop
    x, y, w, h = aligned.rect
    return ProjectionTarget(Image.fromarray(aligned.crop), aligned.rect, aligned,
                            np.ascontiguousarray(pixels[y:y + h, x:x + w]))


def align_photo(photo: np.ndarray, recipe: Recipe, resolution: int, detector: FaceDetector,
                bounds: Rect | None = None, face: int | None = None) -> AlignedFace:
    """Find faces in `bounds` of a uint8 [H, W, 3] photo (default all of it) and align face `face`
    (an index into the largest-first list; default 0). Raises FaceError with what to do instead."""
    h, w = photo.shape[:2]
    bx, by, bw, bh = bounds or (0, 0, w, h)
    faces = [_moved(f, bx, by) for f in detector.detect(photo[by:by + bh, bx:bx + bw])]
    return choose_face(photo, faces, recipe, resolution, (bx, by, bw, bh), face)


def choose_face(photo: np.ndarray, faces: list[DetectedFace], recipe: Recipe, resolution: int, bounds: Rect,
                face: int | None = None) -> AlignedFace:
    """Align face `face` of the detected `faces` (largest first), if it suits the model."""
    bx, by, bw, bh = bounds
    if not faces:
        raise FaceError(f"no face found in the {bw}x{bh} px area; select a square around the face and project "
                        "with alignment off")
    index = 0 if face is None else face
    if not 0 <= index < len(faces):
        raise FaceError(f"face {index} was asked for, but {len(faces)} face(s) were found (0 is the largest)")
    chosen = faces[index]
    others = f" ({len(faces)} faces found: choose another, or" if len(faces) > 1 else " ("
    if abs(chosen.yaw_degrees) > MAX_YAW:
        raise FaceError(f"the face is in profile (turned {abs(chosen.yaw_degrees):.0f} degrees; at most {MAX_YAW:.0f} "
                        f"can be aligned){others} project a square selection with alignment off)")
    alignment = Alignment.from_landmarks(chosen.points, recipe, resolution)
    need = max(MIN_FACE_PX, resolution / MAX_UPSCALE)
    if alignment.face_side < need:
        raise FaceError(f"the face is too small for this {resolution} px model: its crop spans "
                        f"{alignment.face_side:.0f} px, at least {need:.0f} px are needed{others} use a larger photo)")
    rect = mask_rect(alignment, recipe, bounds)
    if rect is None:
        raise FaceError("the face lies outside the selected area")
    return AlignedFace(alignment, recipe, rect, faces, index, warp_to_crop(photo, alignment))


def _moved(face: DetectedFace, dx: int, dy: int) -> DetectedFace:
    if dx == 0 and dy == 0:
        return face
    shift2, shift3 = np.array([dx, dy], dtype=np.float64), np.array([dx, dy, 0], dtype=np.float64)
    x, y, w, h = face.box
    return DetectedFace((x + dx, y + dy, w, h), face.points + shift2, face.mesh + shift3, face.score)
