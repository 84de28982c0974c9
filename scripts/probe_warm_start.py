"""The measurements behind docs/training.md, "Why this CPU cannot finish it in a session".

    .venv/bin/python scripts/probe_warm_start.py psnr MODEL...            # PSNR to the renderer's faces
    .venv/bin/python scripts/probe_warm_start.py memorise MODEL [--lr 0.002] [--steps 200]
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from anycost.formats.checkpoints import load_model
from anycost_train.procedural_faces import faces_of_latents


def psnr_to_renderer(g, z: torch.Tensor, target: torch.Tensor) -> float:
    with torch.no_grad():
        out = torch.cat([g(z[i:i + 8], noise="const") for i in range(0, len(z), 8)]).clamp(-1, 1)
    mse = (out - target).square().mean(dim=(1, 2, 3))
    return (10 * torch.log10(4 / mse)).mean().item()          # images in [-1, 1]: peak-to-peak 2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["psnr", "memorise"])
    p.add_argument("models", nargs="+")
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.what == "psnr":        # 32 latents that no run trains on
        for path in a.models:
            g = load_model(path).generator
            z = torch.randn(32, g.cfg.style_dim, generator=torch.Generator().manual_seed(12345))
            print(f"{path}: {psnr_to_renderer(g, z, faces_of_latents(z, g.cfg.resolution)):.2f} dB")
        return
    # memorise: can the generator fit 16 fixed faces? (batch 4, L1 at full resolution, Adam beta1 0.9)
    g = load_model(a.models[0]).generator.float().train().requires_grad_(True)
    z = torch.randn(16, g.cfg.style_dim, generator=torch.Generator().manual_seed(777))
    target = faces_of_latents(z, g.cfg.resolution)
    mapping = {id(q) for q in g.style.parameters()}
    opt = torch.optim.Adam([{"params": [q for q in g.parameters() if id(q) not in mapping]},
                            {"params": list(g.style.parameters()), "lr": a.lr * 100}], lr=a.lr, betas=(0.9, 0.99))
    for step in range(a.steps + 1):
        if step % 50 == 0:
            print(f"step {step}: training-set PSNR {psnr_to_renderer(g, z, target):.2f} dB", flush=True)
        i = (step * 4) % 16
        loss = F.l1_loss(g(z[i:i + 4], noise="const"), target[i:i + 4])
        opt.zero_grad()
        loss.backward()
        opt.step()


if __name__ == "__main__":
    main()
