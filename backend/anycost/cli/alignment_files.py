"""The face alignment of a projected latent, kept beside it (LATENT.json) for `edit`."""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from anycost.core.errors import AnycostError

FORMAT = "anycost-alignment"


@contextmanager
def face_detector(needed: bool):
    """A face detector for one command (closed after it), or None when no alignment is asked for."""
    if not needed:
        yield None
        return
    from anycost.editing.faces.detection import FaceDetector
    detector = FaceDetector()
    try:
        yield detector
    finally:
        detector.close()


def sidecar(latent: Path) -> Path:
    return latent.with_suffix(".json")


def save_alignment(latent: Path, photo: Path, size: tuple[int, int], aligned) -> Path:
    path = sidecar(latent)
    path.write_text(json.dumps({"format": FORMAT, "photo": str(Path(photo).resolve()), "photo_size": list(size),
                                **aligned.record()}, indent=1))
    return path


def load_alignment(latent: Path):
    """(AlignedFace, photo path, photo size) saved by `project --align auto`, or None when there is none."""
    from anycost.editing.faces.photo import AlignedFace
    path = sidecar(latent)
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
        if d.get("format") != FORMAT:
            raise ValueError(f"not an {FORMAT} file")
        return AlignedFace.from_record(d), Path(d["photo"]), tuple(d["photo_size"])
    except (ValueError, KeyError, TypeError) as e:
        raise AnycostError(f"{path}: not a readable alignment file ({e}); delete it to edit the crop alone") from None


def write_composited(out: Path, photo, aligned, render, size: tuple[int, int] | None = None) -> None:
    """The whole photo (a Pillow RGB image; `size`: the one it was projected from) with `render`
    ([1, 3, r, r]) blended over the face."""
    from PIL import Image

    from anycost.editing.faces.photo import Blend
    x, y, w, h = aligned.rect
    if size is not None and tuple(size) != photo.size:
        raise AnycostError(f"the photo is {photo.width}x{photo.height} px, but the face was projected from a "
                           f"{size[0]}x{size[1]} px one: pass that photo with --photo")
    pixels = np.array(photo.convert("RGB"))
    pixels[y:y + h, x:x + w] = Blend(aligned, np.ascontiguousarray(pixels[y:y + h, x:x + w]))(render)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(out)
