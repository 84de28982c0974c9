"""Is each measured attribute a direction in the latent space at all, and how repeatable is its measurement?

The supervised sliders are linear boundaries (anycost_train.directions), so a slider can only move an
attribute as far as a linear function of the latent predicts it. For a teacher-distilled model this
prints, per attribute of anycost_train.attributes:
- the held-out R^2 of the ridge least-squares predictor (fitted on one half of the latents, scored on
  the other) from the model's w to the attribute of its own render, from w to the attribute of the
  teacher's image of the same z, and from the teacher's own z to it;
- the measurement's repeatability on the teacher's images: its correlation with the same measurement
  of the image mirrored (yaw negated) and shifted by one pixel.
A low R^2 with a repeatable measurement means the generator has no linear axis for that attribute
(docs/training.md, "Why the age slider stays short").

    .venv/bin/python scripts/probe_attribute_axes.py backend/anycost/data/demo.safetensors [--n 1500]
"""
import argparse

import numpy as np
import torch

from anycost.formats.checkpoints import load_model
from anycost_train.attributes import ATTRIBUTES, AttributeMeter
from anycost_train.directions import TRUNCATION, measure_wplus, sample_w
from anycost_train.heldout import paired_teacher
from anycost_train.teachers import open_teacher, paired_images


def held_out_r2(x: np.ndarray, y: np.ndarray, ridge: float = 0.1) -> float:
    """R^2 on the second half of the linear predictor fitted on the first (rows where y is measured)."""
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    h = len(y) // 2
    xm, ym = x[:h].mean(0), y[:h].mean()
    xc = x[:h] - xm
    beta = np.linalg.solve(xc.T @ xc / h + ridge * np.eye(x.shape[1]), xc.T @ (y[:h] - ym) / h)
    pred = (x[h:] - xm) @ beta + ym
    return float(1 - np.mean((y[h:] - pred) ** 2) / np.var(y[h:]))


def repeat_r(a: dict, b: dict, attribute: str, sign: float = 1.0) -> float:
    ok = np.isfinite(a[attribute]) & np.isfinite(b[attribute])
    return float(np.corrcoef(a[attribute][ok], sign * b[attribute][ok])[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=1500, help="latents per fit")
    ap.add_argument("--n-repeat", type=int, default=400, help="teacher images for the repeatability")
    ap.add_argument("--seed", type=int, default=321)
    args = ap.parse_args()
    torch.set_num_threads(2)
    model = load_model(args.model)
    spec = paired_teacher(model.metadata)
    if not spec:
        raise SystemExit(f"{args.model} was not paired with a teacher in training (no stage 'teacher' in its chain)")
    g, teacher = model.generator.eval(), open_teacher(spec)
    meter = AttributeMeter()
    try:
        # as the directions are fitted: the model's samples at the sliders' truncation ...
        w = sample_w(g, args.n, args.seed)
        own = measure_wplus(g, meter, w[:, None].expand(-1, g.n_style, -1))
        # ... and the teacher's image of each untruncated z (the pairing of the warm start)
        z = torch.randn(args.n, g.cfg.style_dim, generator=torch.Generator().manual_seed(args.seed + 1))
        with torch.no_grad():
            wz = torch.cat([g.mapping(c) for c in z.split(64)])
            theirs = meter.measure(torch.cat([paired_images(teacher, c, g.cfg.resolution).cpu() for c in z.split(64)]))
            zr = torch.randn(args.n_repeat, g.cfg.style_dim, generator=torch.Generator().manual_seed(args.seed + 2))
            x = torch.cat([paired_images(teacher, c, g.cfg.resolution).cpu() for c in zr.split(64)])
        base, mirrored, shifted = meter.measure(x), meter.measure(x.flip(-1)), meter.measure(torch.roll(x, 1, -1))
    finally:
        meter.close()
    dim = teacher.latent_dim
    print(f"{args.n} latents per fit (the model's samples at truncation {TRUNCATION}; the teacher's images of "
          f"untruncated z), {args.n_repeat} teacher images for the repeatability; a face found in "
          f"{own['found'].mean():.0%} / {theirs['found'].mean():.0%}")
    print("| attribute | R² w → own render | R² w → teacher's image | R² teacher z → its image | "
          "repeat, mirrored | repeat, 1 px shift |\n|---|---|---|---|---|---|")
    for a in ATTRIBUTES:
        print(f"| {a} | {held_out_r2(w.numpy(), own[a]):.2f} | {held_out_r2(wz.numpy(), theirs[a]):.2f} | "
              f"{held_out_r2(z[:, :dim].numpy(), theirs[a]):.2f} | "
              f"{repeat_r(base, mirrored, a, -1.0 if a == 'yaw' else 1.0):.2f} | {repeat_r(base, shifted, a):.2f} |")


if __name__ == "__main__":
    main()
