"""Attribute directions and W+ arithmetic.

A direction is a vector in W applied to a range of W+ rows (the coarse and middle layers by
default, as the official demo does, so fine texture and colour stay). Edits are always computed
from the projected latent, which is never modified.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file

from anycost.core.paths import models_dir
from anycost.models import CrepsGenerator, Generator

if TYPE_CHECKING:
    from anycost.formats.checkpoints import Model

PCA_COMPONENTS = 8
PCA_SAMPLES = 20000


@dataclass
class Direction:
    name: str
    vector: torch.Tensor          # [style_dim]
    min: float = -1.0             # slider range, in slider units
    max: float = 1.0
    scale: float = 1.0            # W units per slider unit
    rows: tuple[int, int] = (0, 0)  # W+ rows [start, end) the direction moves
    source: str = "model"         # "model" | "official-boundary" | "pca"

    def describe(self) -> dict:
        return {"name": self.name, "min": self.min, "max": self.max, "default": 0.0, "source": self.source}


def default_rows(n_style: int) -> tuple[int, int]:
    """Coarse and middle rows: 12 of 18 at 1024 px, as in the official demo."""
    return 0, max(1, round(n_style * 2 / 3))


def apply_edit(wplus: torch.Tensor, directions: dict[str, Direction], values: dict[str, float]) -> torch.Tensor:
    """W+ [N, n_style, D] moved by `values` (slider units); returns a new tensor."""
    out = wplus.clone()
    for name, value in values.items():
        d = directions.get(name)
        if d is None:
            raise KeyError(name)
        if value == 0:
            continue
        value = min(max(float(value), d.min), d.max)
        a, b = d.rows
        out[:, a:b] += value * d.scale * d.vector.to(out)
    return out


# ----------------------------------------------------------------------- where they come from

def from_model_file(metadata: dict, tensors: dict[str, torch.Tensor], n_style: int) -> dict[str, Direction]:
    """Directions stored in our model file: metadata['directions'] + tensors 'directions.<name>'."""
    out = {}
    for spec in metadata.get("directions", []):
        name = spec["name"]
        vec = tensors.get(f"directions.{name}")
        if vec is None:
            continue
        out[name] = Direction(name, vec.float().flatten(), float(spec.get("min", -1)), float(spec.get("max", 1)),
                              float(spec.get("scale", 1)), tuple(spec.get("rows", default_rows(n_style))),
                              "pca" if spec.get("kind") == "pca" else "model")
    return out


def from_official_boundaries(path: Path, n_style: int) -> dict[str, Direction]:
    """An official `boundary_<config>.pt`: {'31_Smiling': (1, 512) unit vector in W, ...}.

    Slider -1..1 times 0.6, on the first 2/3 of the rows, as in the official demo.
    """
    raw = torch.load(path, map_location="cpu", weights_only=True)
    out = {}
    for key, vec in raw.items():
        name = re.sub(r"^\d+_", "", str(key)).replace("_", " ")
        out[name] = Direction(name, torch.as_tensor(vec).float().flatten(), -1.0, 1.0, 0.6,
                              default_rows(n_style), "official-boundary")
    return out


def weights_hash(g: Generator | CrepsGenerator) -> str:
    """A short hash of every weight: tells apart models that share a W space (`fingerprint`), such as
    an adapted model and its original, or CREPS models trained in one anycost model's W."""
    h = hashlib.sha256()
    for k, v in g.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def fingerprint(g: Generator | CrepsGenerator) -> str:
    """A short hash of the mapping network (`style.` in anycost, `mapping.` in CREPS generators):
    identifies a W space for caches."""
    h = hashlib.sha1()
    for k, v in g.state_dict().items():
        if k.startswith(("style.", "mapping.")):
            h.update(k.encode())
            h.update(v.detach().cpu().float().numpy().tobytes())
    return h.hexdigest()[:16]


@torch.no_grad()
def pca_directions(g: Generator | CrepsGenerator, cache_dir: Path | None = None, k: int = PCA_COMPONENTS,
                   n: int = PCA_SAMPLES, seed: int = 0) -> dict[str, Direction]:
    """GANSpace-style principal directions of W, slider in units of the component's std (+-3)."""
    cache = cache_dir / f"pca-{fingerprint(g)}-{k}.safetensors" if cache_dir else None
    if cache is not None and cache.is_file():
        t = load_file(str(cache))
        comps, stds = t["components"], t["stds"]
    else:
        z = torch.randn(n, g.cfg.style_dim, generator=torch.Generator().manual_seed(seed))
        w = torch.cat([g.mapping(c.to(g.w_avg.device)).cpu() for c in z.split(4096)])
        w = w - w.mean(0)
        _, s, v = torch.linalg.svd(w, full_matrices=False)
        comps, stds = v[:k].contiguous(), (s[:k] / (n - 1) ** 0.5).contiguous()
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")    # atomic, as core.measurements writes
            save_file({"components": comps, "stds": stds}, str(tmp))
            tmp.replace(cache)
    rows = default_rows(g.n_style)
    return {f"PC{i + 1}": Direction(f"PC{i + 1}", comps[i], -3.0, 3.0, float(stds[i]), rows, "pca")
            for i in range(len(comps))}


def load_directions(m: Model) -> dict[str, Direction]:
    """The model's own directions; else an official boundary file placed next to the official
    generator in the model folder (`boundary_<name>.pt`); else PCA directions of W, cached."""
    n_style = m.generator.n_style
    dirs = from_model_file(m.metadata, m.extra_tensors, n_style)
    boundary = models_dir() / f"boundary_{m.name}.pt"
    if not dirs and boundary.is_file():
        dirs = from_official_boundaries(boundary, n_style)
    return dirs or pca_directions(m.generator, models_dir() / "directions")
