"""anycost-backend project: image -> W+ latent file, no editor or daemon needed.

With --align auto the face's alignment is saved beside the latent (LATENT.json), so that `edit`
puts its render back into the photo."""
from __future__ import annotations

import argparse
from pathlib import Path

from anycost.core.defaults import DEFAULT_MODEL
from anycost.core.errors import AnycostError

NAME = "project"
HELP = "project an image (or a region of it) into a model's W+ and save the latent (.npy)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", type=Path)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--region", help="X,Y,W,H in pixels (default: the whole image); with --align auto, where "
                                    "faces are looked for and what an edit may change")
    p.add_argument("--align", choices=["none", "auto"], default="none",
                   help="auto: find the face and crop it the way the model was trained (models that declare "
                        "no alignment: a plain crop); none: project the region as it is")
    p.add_argument("--face", type=int, help="with --align auto: which face, 0 = the largest (default)")
    p.add_argument("--steps", type=int, default=100, help="optimization steps after the encoder's guess")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the sub-generator consistency term")
    p.add_argument("--out", type=Path, required=True, help="LATENT.npy: W+ [1, n_style, style_dim] float32")
    p.add_argument("--reconstruction", type=Path, help="also write the reconstruction (PNG; aligned: the "
                                                        "whole photo with the reconstructed face blended in)")


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

    from anycost.cli.alignment_files import face_detector, save_alignment, write_composited
    from anycost.core.imaging import from_pil
    from anycost.editing.faces.photo import projection_target
    from anycost.editing.faces.recipes import model_recipe
    from anycost.editing.perceptual import make_perceptual
    from anycost.editing.projection import ProjectionOptions, project
    from anycost.formats.registry import open_model

    if args.out.suffix.lower() != ".npy":
        raise AnycostError(f"--out must end in .npy, got {args.out}")
    if args.steps < 0:
        raise AnycostError("--steps must be >= 0")
    if args.face is not None and args.align != "auto":
        raise AnycostError("--face needs --align auto")
    img = read_image(args.image)
    x, y, w, h = parse_region(args.region, img.width, img.height)
    model = open_model(args.model)
    g = model.generator.eval().requires_grad_(False)
    res = g.cfg.resolution
    recipe = model_recipe(model.metadata) if args.align == "auto" else None
    if args.align == "auto" and recipe is None:
        print(f"model {model.name} declares no face alignment: projecting the region as it is")
    with face_detector(recipe is not None) as detector:
        found = projection_target(img, (x, y, w, h), res, recipe, detector, args.face)
    aligned = found.aligned
    if aligned is not None:
        d = aligned.describe()
        print(f"face {d['face']} of {len(d['faces'])}: {d['face_px']:.0f} px across, turned {d['roll']:+.1f} degrees; "
              f"an edit may change {d['region'][2]}x{d['region'][3]} px at {d['region'][0]},{d['region'][1]}")
    target = from_pil(found.crop)[None]
    perceptual = make_perceptual()
    r = project(g, target, perceptual, ProjectionOptions(steps=args.steps, consistency_weight=args.alpha),
                encoder=model.encoder,
                progress=lambda s, n, loss, _: (print(f"step {s}/{n} loss {loss:.4f}", flush=True)
                                                if s % 25 == 0 else None))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, r.wplus.cpu().numpy().astype(np.float32))
    if aligned is not None:
        save_alignment(args.out, args.image, img.size, aligned)
    m = r.metrics
    print(f"fit: PSNR {m['psnr']:.2f} dB, {perceptual.name} {m[perceptual.name]:.4f}"
          + ("" if perceptual.name.startswith("lpips") else " (LPIPS weights not present)")
          + f"; {r.steps} steps ({r.stopped}) in {r.seconds:.1f} s; start: "
          + ("encoder" if model.encoder is not None else "mean latent"))
    print("previews: " + ", ".join(f"{c['ratio']:g}x@{c['resolution']} {c['psnr']:.2f} dB" for c in m["configs"]))
    if args.reconstruction:
        import torch

        from anycost.core.imaging import decode_image, encode_image
        with torch.inference_mode():
            rec = g.synthesis(r.wplus)
        if aligned is not None:
            write_composited(args.reconstruction, img, aligned, rec)
        else:
            decode_image(encode_image(rec, (w, h))).save(args.reconstruction)
    print(f"wrote {args.out}" + (f" and {args.out.with_suffix('.json')}" if aligned is not None else ""))
    return 0
