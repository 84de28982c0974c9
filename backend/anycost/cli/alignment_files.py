"""The face alignment of a projected latent, kept beside it (LATENT.json) for `edit`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import AnycostError

FORMAT = "anycost-alignment"


def align_for_cli(photo: np.ndarray, recipe, resolution: int, bounds, face: int | None):
    from ..faces.detection import FaceDetector
    from ..faces.photo import align_photo
    detector = FaceDetector()
    try:
        return align_photo(photo, recipe, resolution, detector, bounds, face)
    finally:
        detector.close()


def sidecar(latent: Path) -> Path:
    return latent.with_suffix(".json")


def save_alignment(latent: Path, photo: Path, aligned) -> Path:
    path = sidecar(latent)
    path.write_text(json.dumps({"format": FORMAT, "photo": str(Path(photo).resolve()), **aligned.record()}, indent=1))
    return path


def load_alignment(latent: Path):
    """(AlignedFace, photo path) saved by `project --align auto`, or None when there is none."""
    from ..faces.photo import AlignedFace
    path = sidecar(latent)
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
        if d.get("format") != FORMAT:
            raise ValueError(f"not an {FORMAT} file")
        return AlignedFace.from_record(d), Path(d["photo"])
    except (ValueError, KeyError, TypeError) as e:
        raise AnycostError(f"{path}: not a readable alignment file ({e}); delete it to edit the crop alone") from None


def write_composited(out: Path, photo, aligned, render) -> None:
    """The whole photo (a Pillow RGB image) with `render` ([1, 3, r, r]) blended over the face."""
    from PIL import Image

    from ..faces.photo import Blend
    x, y, w, h = aligned.rect
    pixels = np.array(photo.convert("RGB"))
    if (pixels.shape[1], pixels.shape[0]) != (photo.width, photo.height) or x + w > photo.width or y + h > photo.height:
        raise AnycostError(f"the photo is {photo.width}x{photo.height} px; the alignment needs {x + w}x{y + h}")
    pixels[y:y + h, x:x + w] = Blend(aligned, np.ascontiguousarray(pixels[y:y + h, x:x + w]))(render)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(out)
