"""Faces a model never saw, for its cards and reports: its teacher's samples of held-out latent seeds
when it was taught by one (anycost_train.teachers), else held-out procedural faces."""
from __future__ import annotations

import torch

HELD_OUT_SEED = 5_000_000


def _stage_configs(metadata: dict):
    """The training configs of the model's chain, last stage first."""
    t = metadata.get("training")
    while t:
        yield t.get("config") or {}
        t = t.get("init")


def model_teacher(metadata: dict) -> str:
    """The teacher of a stage in the model's training chain, or ""."""
    return next((c["teacher"] for c in _stage_configs(metadata) if c.get("teacher")), "")


def paired_teacher(metadata: dict) -> str:
    """The teacher a stage of the chain was paired with (stage "teacher": G(z) regressed onto
    teacher(z), so the model's z and the teacher's latent name the same face), or ""."""
    return next((c["teacher"] for c in _stage_configs(metadata)
                 if c.get("stage") == "teacher" and c.get("teacher")), "")


def held_out_faces(metadata: dict, resolution: int, n: int, seed: int = HELD_OUT_SEED) -> tuple[torch.Tensor, str]:
    """[n, 3, R, R] in [-1, 1], and what they are (for captions)."""
    spec = model_teacher(metadata)
    if spec:
        from .teachers import TeacherSamples, open_teacher
        return TeacherSamples(open_teacher(spec), resolution, seed).batch(0, n), f"samples of the teacher {spec}"
    from .data import ProceduralFaces
    ds = ProceduralFaces(resolution, seed)
    return torch.stack([ds[i] for i in range(n)]), "procedural faces"
