"""anycost-backend sample: write generated images (PNG grid) or raw outputs (.npy)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import cast

from anycost.cli.options import parse_channels
from anycost.core.defaults import DEFAULT_MODEL
from anycost.core.errors import AnycostError

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
    creps = p.add_argument_group("CREPS models (--model random:creps-demo or a CREPS file)")
    creps.add_argument("--size", help="WxH of the whole image, any size and aspect (default: the model's)")
    creps.add_argument("--region", help="X,Y,W,H in pixels of --size: only that part, identical to the same "
                                        "crop of the whole image")
    creps.add_argument("--supersample", type=int, default=1, help="s x s samples per pixel, averaged")
    creps.add_argument("--tile", type=int, default=256, help="tile side in pixels (bounds memory)")


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


def seeded_z(seed: int, n: int, style_dim: int) -> list:
    """Image i's z [1, style_dim] from seed + i (so an image does not depend on --n)."""
    import torch
    return [torch.randn(1, style_dim, generator=torch.Generator().manual_seed(seed + i)) for i in range(n)]


def write_images(out, path: Path) -> None:
    """N x 3 x H x W floats -> .npy (the float output, exactly) or .png (a grid when several)."""
    import numpy as np

    from anycost.core.imaging import grid, to_pil
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".npy":
        np.save(path, out.numpy())
    else:
        pics = [to_pil(x) for x in out]
        (pics[0] if len(pics) == 1 else grid(pics)).save(path)


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise AnycostError(f"--size must be WxH, e.g. 1024x768, got {text!r}") from None
    if w < 1 or h < 1 or w * h > 16384 * 16384:
        raise AnycostError(f"--size {text} is out of range")
    return w, h


def run(args) -> int:
    from anycost.formats.registry import open_model
    if args.out.suffix.lower() not in (".png", ".npy"):
        raise AnycostError(f"--out must end in .png or .npy, got {args.out}")
    model = open_model(args.model, device=args.device, kind=None)
    if model.kind == "creps":
        return run_creps(args, model)
    if args.size or args.region:
        raise AnycostError("--size and --region are for CREPS models; anycost models take --resolution")
    import torch

    from anycost.models import resolve_channels

    if args.n < 1:
        raise AnycostError(f"--n must be at least 1, got {args.n}")
    g = model.generator
    channels = parse_channels(args.channels)
    g.resolve_target_res(args.resolution)            # validate before any work
    resolve_channels(g.cfg, channels)

    if args.seed is not None:
        latents = seeded_z(args.seed, args.n, g.cfg.style_dim)
        space, seeds = "z", [args.seed + i for i in range(args.n)]
    else:
        path = args.z or args.w
        t = load_latents(path, g.cfg.style_dim)
        latents, space, seeds = list(t.split(1)), ("z" if args.z else "w"), list(range(len(t)))

    images = []
    with torch.inference_mode():
        for latent, seed in zip(latents, seeds, strict=True):
            wplus = g.latent_to_wplus(latent.to(args.device), space, truncation=args.truncation)
            gen = torch.Generator().manual_seed(seed) if args.noise == "random" else None
            images.append(g.synthesis(wplus, noise=args.noise, channels=channels,
                                      target_res=args.resolution, generator=gen).cpu())
    out = torch.cat(images)
    write_images(out, args.out)
    print(f"wrote {args.out} ({len(out)} x {out.shape[-1]}px, model {model.name})")
    return 0


def run_creps(args, model) -> int:
    """A CREPS model: the same continuous image at any size, region and supersampling."""
    import sys

    import torch

    from anycost.cli.options import parse_int_list

    if args.channels or args.resolution:
        raise AnycostError("--channels and --resolution are for anycost models; CREPS models take --size")
    if args.n < 1 or args.supersample < 1 or args.tile < 1:
        raise AnycostError("--n, --supersample and --tile must be at least 1")
    g = model.generator
    w, h = parse_size(args.size) if args.size else (g.cfg.resolution, g.cfg.resolution)
    region = None
    if args.region:
        region = cast("tuple[int, int, int, int]", tuple(parse_int_list(args.region, "--region")))  # checked next
        rx, ry, rw, rh = region if len(region) == 4 else (-1, -1, 0, 0)
        if rw < 1 or rh < 1 or rx < 0 or ry < 0 or rx + rw > w or ry + rh > h:
            raise AnycostError(f"--region must be X,Y,W,H inside the {w}x{h} image, got {args.region}")
    with torch.inference_mode():
        if args.seed is not None:
            z = torch.cat(seeded_z(args.seed, args.n, g.cfg.style_dim))
            ws = g.map(z.to(args.device), truncation=args.truncation)
        else:
            t = load_latents(args.z or args.w, g.cfg.style_dim).to(args.device)
            if args.z is not None:
                ws = g.map(t.reshape(-1, g.cfg.style_dim), truncation=args.truncation)
            elif t.ndim == 2 or t.shape[1] == 1:
                ws = t.reshape(len(t), 1, -1).expand(-1, g.cfg.num_ws, -1)
            elif t.shape[1] == g.cfg.num_ws:
                ws = t
            else:
                raise AnycostError(f"W+ latents of this model have {g.cfg.num_ws} rows, got {t.shape[1]}")
        out = g.render(ws, (h, w), region=region, supersample=args.supersample, tile=args.tile,
                       progress=lambda i, n: print(f"\rtile {i}/{n}", end="", file=sys.stderr)).cpu()
    print("", file=sys.stderr)
    write_images(out, args.out)
    print(f"wrote {args.out} ({len(out)} x {out.shape[-1]}x{out.shape[-2]}px, "
          f"CREPS model {model.metadata.get('name')})")
    return 0
