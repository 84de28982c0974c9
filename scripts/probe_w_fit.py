"""Where is a teacher-distilled model's error: in the mapping z -> w, or in the synthesis?

Draws the teacher's faces of held-out latents, then, with the model frozen, optimizes one w per face
(the same in every row: W) and one per row (W+), starting from the mapping's output. If W already
gets far closer than the mapping does, the synthesis can draw those faces and the mapping is what
training still has to learn (docs/training.md, "Where the warm start's error is").

    .venv/bin/python scripts/probe_w_fit.py runs/demo-warm/latest.safetensors [--faces 16 --steps 300]
"""
import argparse
import statistics

import torch
import torch.nn.functional as F

from anycost.editing.projection import psnr
from anycost.formats.checkpoints import load_model
from anycost_train.heldout import HELD_OUT_SEED, model_teacher
from anycost_train.teachers import open_teacher, paired_images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--faces", type=int, default=16)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model)
    g = model.generator.eval().requires_grad_(False)
    teacher = open_teacher(model_teacher(model.metadata) or "gan-face-generate", "cpu")
    z = torch.randn(args.faces, g.cfg.style_dim, generator=torch.Generator().manual_seed(HELD_OUT_SEED))
    with torch.no_grad():
        want = paired_images(teacher, z, g.cfg.resolution)
        w0 = g.latent_to_wplus(z[:, None])

    def mean_psnr(img):
        return statistics.mean(psnr(a[None], b[None]) for a, b in zip(img, want, strict=True))

    with torch.no_grad():
        print(f"mapping: {mean_psnr(g.synthesis(w0, noise='const')):.2f} dB")
    for space in ("W", "W+"):
        w = (w0[:, :1] if space == "W" else w0).clone().requires_grad_(True)
        opt = torch.optim.Adam([w], lr=0.01)
        for _ in range(args.steps):
            img = g.synthesis(w.expand(-1, g.n_style, -1), noise="const")
            loss = F.mse_loss(img, want)
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"{space} optimized ({args.steps} steps): {mean_psnr(img.detach()):.2f} dB")


if __name__ == "__main__":
    main()
