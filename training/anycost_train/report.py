"""The editing report: projection fidelity (encoder, optimization with alpha = 0 and alpha = 0.5, full
generator and each sub-generator) on held-out faces, and the disentanglement of each direction."""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import torch

from anycost.core.timing import cpu_name
from anycost.editing.directions import from_model_file
from anycost.editing.perceptual import make_perceptual
from anycost.editing.projection import ProjectionOptions, downsample, project, psnr
from anycost.formats.checkpoints import load_model
from anycost.models import TRAINED_RATIOS

from .directions import SUPERVISED
from .heldout import HELD_OUT_SEED, held_out_faces

PAPER_ALPHA = 0.5


@torch.no_grad()
def preview_agreement(g, wplus) -> float:
    """Mean PSNR between each preview configuration and the full result (downsampled)."""
    full = g.synthesis(wplus)
    values = []
    for c in TRAINED_RATIOS[1:]:
        values.append(psnr(g.synthesis(wplus, channels=c), full))
    for k in g.cfg.elastic_resolutions[1:]:
        values.append(psnr(g.synthesis(wplus, target_res=k), downsample(full, k)))
    return statistics.mean(values)


def _images_trained(training: dict | None) -> int:
    """Images seen by the model's stage and every stage it started from (`init`)."""
    total = 0
    while training:
        total += int(training.get("images") or 0)
        training = training.get("init")
    return total


def write_report(model_path: Path, out: Path, n_images: int = 6, steps: int = 100, log_fn=print) -> Path:
    t_start = time.monotonic()
    model = load_model(model_path)
    g = model.generator.eval().requires_grad_(False)
    perceptual = make_perceptual()
    faces, what = held_out_faces(model.metadata, g.cfg.resolution, n_images)
    methods: dict[str, dict[str, Any]] = {}
    if model.encoder is not None:
        methods["encoder only"] = dict(steps=0, alpha=0.0)
    else:
        methods["mean latent (no encoder)"] = dict(steps=0, alpha=0.0)
    methods[f"+ {steps} steps, alpha = 0"] = dict(steps=steps, alpha=0.0)
    methods[f"+ {steps} steps, alpha = {PAPER_ALPHA}"] = dict(steps=steps, alpha=PAPER_ALPHA)
    rows: dict[str, list[dict]] = {m: [] for m in methods}
    for i in range(n_images):
        x = faces[i][None]
        for name, m in methods.items():
            r = project(g, x, perceptual, ProjectionOptions(steps=m["steps"], consistency_weight=m["alpha"],
                                                            patience=10 ** 6, seed=i), encoder=model.encoder)
            rows[name].append({"psnr": r.metrics["psnr"], "perceptual": r.metrics[perceptual.name],
                               "configs": {(c["ratio"], c["resolution"]): c["psnr"] for c in r.metrics["configs"]},
                               "agreement": preview_agreement(g, r.wplus)})
        log_fn(f"image {i + 1}/{n_images} projected")

    lines = [f"# Editing report: `{Path(model_path).name}`", "",
             f"Regenerate: `anycost-train report --model {model_path} --out {out} --images {n_images} "
             f"--steps {steps}`", "",
             f"Measured {time.strftime('%Y-%m-%d')} on {cpu_name()} ({torch.get_num_threads()} threads), "
             f"{time.monotonic() - t_start:.0f} s. Model: {g.cfg.resolution} px"
             + (", **untrained**" if model.metadata.get("untrained") else "")
             + (f", trained {_images_trained(model.metadata['training'])} images in all stages"
                if "training" in model.metadata else "")
             + (", with encoder" if model.encoder is not None else ", no encoder") + ".", "",
             f"## Projection of {n_images} held-out faces ({what}, seeds {HELD_OUT_SEED}+)", "",
             f"PSNR in dB against the photo (sub-generators against the photo downsampled to their size); "
             f"perceptual distance `{perceptual.name}`"
             + (f" ({perceptual.warning})" if perceptual.warning else "") + "; *previews vs final*: mean PSNR "
             "between each preview configuration and the full generator's result for the same latent, the "
             "consistency the paper's alpha term is for. Mean over images.", ""]
    configs = list(rows[next(iter(rows))][0]["configs"])
    head = ["method", "full PSNR", perceptual.name] + [f"{r:g}x@{k}" for r, k in configs] + ["previews vs final"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, rs in rows.items():
        cells = [name, f"{statistics.mean(r['psnr'] for r in rs):.2f}",
                 f"{statistics.mean(r['perceptual'] for r in rs):.4f}"]
        cells += [f"{statistics.mean(r['configs'][c] for r in rs):.2f}" for c in configs]
        cells += [f"{statistics.mean(r['agreement'] for r in rs):.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    a0, a1 = list(rows)[-2], list(rows)[-1]
    gain = statistics.mean(r["agreement"] for r in rows[a1]) - statistics.mean(r["agreement"] for r in rows[a0])
    sub_gain = statistics.mean(statistics.mean(r["configs"].values()) for r in rows[a1]) - \
        statistics.mean(statistics.mean(r["configs"].values()) for r in rows[a0])
    lines += ["", f"The consistency term (alpha = {PAPER_ALPHA} vs 0) changes the previews' agreement with the "
                  f"final by {gain:+.2f} dB and their fidelity to the photo by {sub_gain:+.2f} dB on average.", ""]

    dirs = from_model_file(model.metadata, model.extra_tensors, g.n_style)
    sd = model.metadata.get("attribute_sd")
    lines += ["## Directions", ""]
    if not sd or not any(n in dirs for n in SUPERVISED):
        lines += ["The model has no measured attribute directions (run `anycost-train directions`).", ""]
    else:
        from .attributes import ATTRIBUTES, AttributeMeter
        from .directions import sample_w
        from .model_card import slider_effects
        meter = AttributeMeter()
        try:
            w = sample_w(g, 48, seed=777)[:, None].expand(-1, g.n_style, -1)
            effects = slider_effects(g, meter, dirs, w, sd)
        finally:
            meter.close()
        lines += ["Each supervised slider from its minimum to its maximum over 48 generated samples (seed 777, "
                  "truncation 0.7): the change of its own measured attribute, and the largest change of any other, "
                  "both in standard deviations of the attribute over samples (docs/demo-model.md has the "
                  "same on projected faces).", "",
                  "| direction | own change | own (sd) | largest other (sd) | specificity | slider range |",
                  "|---|---|---|---|---|---|"]
        for eff in effects:
            d = dirs[eff["name"]]
            lines.append(f"| {eff['name']} | {eff['own']:+.3f} {ATTRIBUTES[eff['attribute']]} | {eff['own_sd']:+.2f} | "
                         f"{eff['worst']} {eff['others_sd'][eff['worst']]:+.2f} | {eff['specificity']:.1f}x | "
                         f"{d.min:g}..{d.max:g} |")
        pcs = [d.name for d in dirs.values() if d.source == "pca"]
        lines += ["", f"Principal-component directions stored as well: {', '.join(pcs) or 'none'}.", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out
