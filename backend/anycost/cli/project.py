"""anycost-backend project: image -> W+ latent file, no editor or daemon needed."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import AnycostError
from ..defaults import DEFAULT_MODEL

NAME = "project"
HELP = "project an image (or a region of it) into a model's W+ and save the latent (.npy)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", type=Path)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--region", help="X,Y,W,H in pixels (default: the whole image)")
    p.add_argument("--steps", type=int, default=100, help="optimization steps after the encoder's guess")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the sub-generator consistency term")
    p.add_argument("--out", type=Path, required=True, help="LATENT.npy: W+ [1, n_style, style_dim] float32")
    p.add_argument("--reconstruction", type=Path, help="also write the reconstruction (PNG)")


def parse_region(text: str | None, width: int, height: int) -> tuple[int, int, int, int]:
    if text is None:
        return 0, 0, width, height
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise AnycostError(f"--region takes X,Y,W,H integers, got {text!r}") from None
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise AnycostError(f"--region {text} lies outside the {width}x{height} image")
    return x, y, w, h


def read_image(path: Path):
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as img:
            if img.mode not in ("RGB", "RGBA", "L", "P", "LA", "I;16", "I", "F", "CMYK", "YCbCr"):
                raise AnycostError(f"{path}: unsupported image mode {img.mode}")
            return img.convert("RGB")       # grey, palette, 16-bit and CMYK images are converted
    except (FileNotFoundError, IsADirectoryError):
        raise AnycostError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError) as e:
        raise AnycostError(f"{path}: not a readable image ({e})") from None


def run(args) -> int:
    import numpy as np
    from PIL import Image

    from ..hub import open_model
    from ..perceptual import make_perceptual
    from ..projection import ProjectionOptions, project
    from ..imaging import from_pil
    from ..service.engine import encode_image

    if args.out.suffix.lower() != ".npy":
        raise AnycostError(f"--out must end in .npy, got {args.out}")
    if args.steps < 0:
        raise AnycostError("--steps must be >= 0")
    img = read_image(args.image)
    x, y, w, h = parse_region(args.region, img.width, img.height)
    model = open_model(args.model)
    g = model.generator.eval().requires_grad_(False)
    res = g.cfg.resolution
    target = from_pil(img.crop((x, y, x + w, y + h)).resize((res, res), Image.LANCZOS))[None]
    perceptual = make_perceptual()
    r = project(g, target, perceptual, ProjectionOptions(steps=args.steps, consistency_weight=args.alpha),
                encoder=model.encoder,
                progress=lambda s, n, loss, _: print(f"step {s}/{n} loss {loss:.4f}", flush=True) if s % 25 == 0 else None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, r.wplus.cpu().numpy().astype(np.float32))
    m = r.metrics
    print(f"fit: PSNR {m['psnr']:.2f} dB, {perceptual.name} {m[perceptual.name]:.4f}"
          + ("" if perceptual.name.startswith("lpips") else " (LPIPS weights not present)")
          + f"; {r.steps} steps ({r.stopped}) in {r.seconds:.1f} s; start: "
          + ("encoder" if model.encoder is not None else "mean latent"))
    print("previews: " + ", ".join(f"{c['ratio']:g}x@{c['resolution']} {c['psnr']:.2f} dB" for c in m["configs"]))
    if args.reconstruction:
        import torch
        with torch.inference_mode():
            rec = encode_image(g.synthesis(r.wplus), (w, h))
        Image.frombytes("RGB", (rec.w, rec.h), rec.data).save(args.reconstruction)
    print(f"wrote {args.out}")
    return 0
