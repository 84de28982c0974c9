"""anycost-backend sample: write generated images (PNG grid) or raw outputs (.npy)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..defaults import DEFAULT_MODEL
from ..errors import AnycostError
from .options import parse_channels

NAME = "sample"
HELP = "generate images from seeds or latent files with any sub-generator"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help="path, official name, or random:ARCH[:SEED]")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--seed", type=int, help="first seed; image i uses seed S+i")
    src.add_argument("--z", type=Path, help=".npy of z latents: [D], [N, D] or [N, L, D]")
    src.add_argument("--w", type=Path, help=".npy of w / W+ latents: [D], [N, D] or [N, n_style, D]")
    p.add_argument("--n", type=int, default=1, help="number of images with --seed (default 1)")
    p.add_argument("--channels", help="uniform ratio (1, 0.75, 0.5, 0.25) or comma-separated per-layer widths")
    p.add_argument("--resolution", type=int, help="stop at this resolution (default: full)")
    p.add_argument("--truncation", type=float, default=1.0, help="psi toward the mean w (default 1 = none)")
    p.add_argument("--noise", choices=["const", "random"], default="const",
                   help="const = the model's stored noise (deterministic, default); random = seeded fresh noise")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", type=Path, required=True, help="FILE.png (grid when several) or FILE.npy (float NCHW)")


def load_latents(path: Path, style_dim: int):
    import numpy as np
    import torch
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise AnycostError(f"cannot read latents from {path}: {e}") from None
    t = torch.from_numpy(np.asarray(arr, dtype=np.float32))
    if t.ndim == 1:
        t = t[None]
    if t.shape[-1] != style_dim or t.ndim not in (2, 3):
        raise AnycostError(f"{path}: latents must be [D], [N, D] or [N, L, D] with D = {style_dim}, "
                           f"got {list(arr.shape)}")
    return t


def run(args) -> int:
    import numpy as np
    import torch

    from ..hub import open_model
    from ..imaging import grid, to_pil
    from ..models import resolve_channels

    if args.out.suffix.lower() not in (".png", ".npy"):
        raise AnycostError(f"--out must end in .png or .npy, got {args.out}")
    if args.n < 1:
        raise AnycostError(f"--n must be at least 1, got {args.n}")
    model = open_model(args.model, device=args.device)
    g = model.generator
    channels = parse_channels(args.channels)
    g.resolve_target_res(args.resolution)            # validate before any work
    resolve_channels(g.cfg, channels)

    if args.seed is not None:
        latents = [torch.randn(1, g.cfg.style_dim, generator=torch.Generator().manual_seed(args.seed + i))
                   for i in range(args.n)]
        space, seeds = "z", [args.seed + i for i in range(args.n)]
    else:
        path = args.z or args.w
        t = load_latents(path, g.cfg.style_dim)
        latents, space, seeds = list(t.split(1)), ("z" if args.z else "w"), list(range(len(t)))

    images = []
    with torch.inference_mode():
        for latent, seed in zip(latents, seeds):
            wplus = g.latent_to_wplus(latent.to(args.device), space, truncation=args.truncation)
            gen = torch.Generator().manual_seed(seed) if args.noise == "random" else None
            images.append(g.synthesis(wplus, noise=args.noise, channels=channels,
                                      target_res=args.resolution, generator=gen).cpu())
    out = torch.cat(images)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix.lower() == ".npy":
        np.save(args.out, out.numpy())
    else:
        pics = [to_pil(x) for x in out]
        (pics[0] if len(pics) == 1 else grid(pics)).save(args.out)
    print(f"wrote {args.out} ({len(out)} x {out.shape[-1]}px, model {model.name})")
    return 0
