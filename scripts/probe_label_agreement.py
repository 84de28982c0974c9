"""Do a teacher-distilled model's own faces carry the teacher's attributes?

For latents z the model was paired on (G(z) ~ teacher(z[:dim])), measures every attribute of
anycost_train.attributes on both images and prints their correlation over the pairs where both
faces are found. A low figure means the model's renders are a noisy label source for that attribute
and the teacher's images a cleaner one (docs/editing.md, "Directions").

    .venv/bin/python scripts/probe_label_agreement.py backend/anycost/data/demo.safetensors [--n 300]
"""
import argparse

import numpy as np
import torch

from anycost.formats.checkpoints import load_model
from anycost_train.attributes import ATTRIBUTES, AttributeMeter
from anycost_train.heldout import paired_teacher
from anycost_train.teachers import open_teacher, paired_images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=123)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model)
    spec = paired_teacher(model.metadata)
    if not spec:
        raise SystemExit(f"{args.model} was not paired with a teacher in training (no stage 'teacher' in its chain)")
    g, teacher = model.generator.eval(), open_teacher(spec)
    z = torch.randn(args.n, g.cfg.style_dim, generator=torch.Generator().manual_seed(args.seed))
    with torch.no_grad():
        ours = torch.cat([g(c) for c in z.split(50)])
        theirs = torch.cat([paired_images(teacher, c, g.cfg.resolution).cpu() for c in z.split(50)])
    meter = AttributeMeter()
    try:
        mo, mt = meter.measure(ours), meter.measure(theirs)
    finally:
        meter.close()
    both = mo["found"] & mt["found"]
    print(f"{args.n} latents; a face found in the model's image {mo['found'].mean():.0%}, the teacher's "
          f"{mt['found'].mean():.0%}, both {both.mean():.0%}")
    print("| attribute | correlation | sd, model's images | sd, teacher's images |\n|---|---|---|---|")
    for a, unit in ATTRIBUTES.items():
        ok = both & np.isfinite(mo[a]) & np.isfinite(mt[a])
        r = np.corrcoef(mo[a][ok], mt[a][ok])[0, 1]
        print(f"| {a} | {r:+.2f} | {np.std(mo[a][ok]):.3f} {unit} | {np.std(mt[a][ok]):.3f} {unit} |")


if __name__ == "__main__":
    main()
