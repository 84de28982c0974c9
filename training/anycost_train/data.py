"""Training data: a folder of images, or the procedural faces; both give multi-resolution batches.

Items are float tensors [3, R, R] in [-1, 1]; the trainer area-downsamples a batch to the
resolution each multi-resolution step compares against.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from anycost.core.imaging import from_pil

from .procedural_faces import ATTRIBUTES, face, labels

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
UNLIMITED = 2 ** 31 - 1


def square_resize(img: Image.Image, resolution: int) -> Image.Image:
    """Centre square crop, then resize."""
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    # PIL sets its filter names (Image.LANCZOS, ...) in a loop: mypy cannot see them
    return img.resize((resolution, resolution), Image.LANCZOS) if s != resolution else img  # type: ignore[attr-defined]


class ImageFolder(Dataset):
    """Every JPEG/PNG/WebP/BMP under `root` (recursive). Unreadable files are skipped and counted."""

    def __init__(self, root: str | Path, resolution: int, flip: bool = True):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"dataset folder not found: {self.root}")
        self.files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise FileNotFoundError(f"no images (png/jpg/webp/bmp) under {self.root}")
        self.resolution = resolution
        self.flip = flip
        self.skipped: set[Path] = set()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        for k in range(len(self.files)):   # an unreadable file is replaced by the next readable one
            path = self.files[(i + k) % len(self.files)]
            try:
                with Image.open(path) as img:
                    x = from_pil(square_resize(img.convert("RGB"), self.resolution))
                break
            except (OSError, UnidentifiedImageError, ValueError):
                if path not in self.skipped:
                    self.skipped.add(path)
                    log.warning("skipping unreadable image %s (%d skipped so far)", path, len(self.skipped))
        else:
            raise RuntimeError(f"no readable image under {self.root}")
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x


class ProceduralFaces(Dataset):
    """Item i is the face of seed `seed + i`: deterministic, effectively unlimited."""

    def __init__(self, resolution: int, seed: int = 0, length: int = UNLIMITED, flip: bool = False):
        self.resolution, self.seed, self.length, self.flip = resolution, seed, length, flip

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> torch.Tensor:
        img, _ = face(self.seed + i, self.resolution)
        x = from_pil(img)
        return x.flip(-1) if self.flip and (self.seed + i) % 2 else x

    def labels(self, i: int) -> dict:
        return labels(self.seed + i)


def open_data(spec: str, resolution: int, seed: int = 0, teacher=None, flip: bool = False) -> Dataset:
    """'procedural', 'teacher' (the samples of `teacher`, see anycost_train.teachers) or a folder."""
    if spec == "procedural":
        return ProceduralFaces(resolution, seed)
    if spec == "teacher":
        if teacher is None:
            raise ValueError("data 'teacher' needs a teacher (e.g. --teacher gan-face-generate)")
        from .teachers import TeacherSamples
        return TeacherSamples(teacher, resolution, seed)
    return ImageFolder(spec, resolution, flip=flip)


def make_dataset(out: Path, n: int, resolution: int, seed: int = 0, progress=None) -> Path:
    """Write n procedural faces as PNGs plus `labels.jsonl` (one {"file", attributes...} per line)."""
    out.mkdir(parents=True, exist_ok=True)
    labels_path = out / "labels.jsonl"
    with open(labels_path, "w") as f:
        for i in range(n):
            img, labels = face(seed + i, resolution)
            name = f"{seed + i:08d}.png"
            img.save(out / name)
            f.write(json.dumps({"file": name, **labels}) + "\n")
            if progress:
                progress(i + 1)
    return labels_path


def read_labels(folder: Path) -> tuple[list[Path], torch.Tensor]:
    """Files and an [N, len(ATTRIBUTES)] label matrix from a folder written by `make_dataset`."""
    files, rows = [], []
    for line in (folder / "labels.jsonl").read_text().splitlines():
        rec = json.loads(line)
        files.append(folder / rec["file"])
        rows.append([float(rec[a]) for a in ATTRIBUTES])
    return files, torch.tensor(rows)
