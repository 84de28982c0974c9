"""Make a trained model shippable: measure what the backend reads from it, record where it came
from, store it in half precision, and refuse files too large to ship inside the package."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from anycost.core.timing import cpu_name
from anycost.editing.consistency import SAMPLES, SEED, consistency_figures
from anycost.editing.perceptual import make_perceptual
from anycost.formats.checkpoints import load_model, save_model

MAX_SHIPPED_BYTES = 25 * 1024 * 1024
CONSISTENCY_SAMPLES = SAMPLES
CONSISTENCY_SEED = SEED


def lineage(metadata: dict) -> list[dict]:
    """The chain of training stages behind a model, oldest first, with command and commit of each."""
    stages, t = [], metadata.get("training")
    while t:
        stages.append({"stage": t.get("stage"), "amount": f"{t.get('images')} images",
                       "command": t.get("command"), "commit": t.get("commit"),
                       "resumed": [h["command"] for h in t.get("history", [])[1:]]})
        t = t.get("init")
    stages.reverse()
    e = metadata.get("encoder_training")
    if e:
        stages.append({"stage": "encoder", "amount": f"{e.get('step')} steps of batch {e.get('batch')}",
                       "command": e.get("command"), "commit": e.get("commit"), "resumed": []})
    d = metadata.get("directions_training")
    if d:
        stages.append({"stage": "directions", "amount": f"{d.get('samples')} measured samples",
                       "command": d.get("command"), "commit": d.get("commit"), "resumed": []})
    return stages


def teacher_licence(metadata: dict) -> str:
    """What the licence of a teacher in the model's training chain imposes on it (e.g. DigiFace-1M's
    non-commercial terms for gan-face-generate), or the licence the model already declares."""
    from .heldout import model_teacher
    from .teachers import DCGAN_FACES, DCGAN_LICENCE
    return DCGAN_LICENCE if model_teacher(metadata) == DCGAN_FACES else metadata.get("licence", "")


def release(model_path: Path, out: Path, name: str, ablations: dict[str, Path] | None = None, half: bool = True,
            log_fn=print, shipped: bool = True) -> Path:
    """`shipped`: the file ships inside the package, so one over MAX_SHIPPED_BYTES is refused; a
    user's model (adapt) lives in their model folder and may be any size."""
    model = load_model(model_path)
    perceptual = make_perceptual()
    log_fn(f"measuring consistency of {model_path} ({CONSISTENCY_SAMPLES} latents)")
    figures: dict[str, Any] = {
        "consistency": consistency_figures(model.generator, perceptual),
        "measured": {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_name(), "samples": CONSISTENCY_SAMPLES,
                     "seed": CONSISTENCY_SEED, "perceptual": perceptual.name, "noise": "const",
                     "reference": "full generator, area-downsampled to the sub-generator's resolution"},
        "ablations": {},
    }
    for label, path in (ablations or {}).items():
        log_fn(f"measuring consistency of the ablation {label!r}: {path}")
        other = load_model(path)
        if other.generator.cfg != model.generator.cfg:
            raise ValueError(f"ablation {path} has a different architecture than {model_path}")
        figures["ablations"][label] = {"consistency": consistency_figures(other.generator, perceptual),
                                       "lineage": lineage(other.metadata)}
    meta = dict(model.metadata, name=name, figures=figures, lineage=lineage(model.metadata))
    meta.pop("untrained", None)
    if licence := teacher_licence(model.metadata):
        meta["licence"] = licence
    path = save_model(out, model.generator, meta, model.extra_tensors, encoder=model.encoder, half=half)
    if not shipped:
        log_fn(f"wrote {path} ({path.stat().st_size / 2 ** 20:.1f} MiB)")
        return path
    return _shippable(path, log_fn)


def release_creps(model_path: Path, out: Path, name: str, half: bool = True, n: int = 32, log_fn=print) -> Path:
    """The same for a CREPS model: its agreement with the anycost model whose W space it shares and
    its scale consistency measured into the file, the lineage of both, half precision."""
    from anycost.formats.checkpoints import load_model
    from anycost.formats.creps import save_creps

    from .creps_card import LATENT_SEED, agreement, open_w_space, random_latents, scale_consistency
    model = load_model(model_path, kind="creps")
    g = model.generator
    w_space = (model.metadata.get("w_space") or {}).get("model")
    anycost = open_w_space(model.metadata)
    teacher = anycost.generator if anycost else None
    perceptual = make_perceptual()
    latents = random_latents(g, teacher, n)
    log_fn(f"measuring {model_path} ({n} latents)")
    figures = {"scale_consistency": scale_consistency(g, teacher, latents[:4]),
               "measured": {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_name(), "samples": n, "seed": LATENT_SEED,
                            "perceptual": perceptual.name}}
    if anycost is not None:
        figures["agreement"] = agreement(g, teacher, latents, perceptual)
    stages = lineage(model.metadata)
    if anycost is not None:
        stages = [dict(s, stage=f"{w_space}: {s['stage']}") for s in anycost.metadata.get("lineage", [])] + stages
    meta = dict(model.metadata, name=name, figures=figures, lineage=stages)
    meta.pop("untrained", None)
    extra = model.extra_tensors
    if anycost is not None:      # the same W space draws the same faces: the same crop rule, licence and
        for key in ("alignment", "licence"):          # sliders (as they are now, not at training time)
            if key in anycost.metadata:
                meta[key] = anycost.metadata[key]
        from .creps_training import teacher_directions
        meta["directions"], dirs = teacher_directions(anycost, g.cfg.num_ws)
        extra = {**{k: v for k, v in extra.items() if not k.startswith("directions.")}, **dirs}
    path = save_creps(out, g, meta, half=half, encoder=model.encoder, extra_tensors=extra)
    return _shippable(path, log_fn)


def _shippable(path: Path, log_fn) -> Path:
    """Refuse (and delete) a file too large to ship inside the package."""
    size = path.stat().st_size
    if size > MAX_SHIPPED_BYTES:
        path.unlink()
        raise ValueError(f"{path} would be {size / 2 ** 20:.1f} MiB, over the {MAX_SHIPPED_BYTES / 2 ** 20:.0f} MiB "
                         "that may ship inside the package")
    log_fn(f"wrote {path} ({size / 2 ** 20:.1f} MiB)")
    return path
