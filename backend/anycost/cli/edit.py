"""anycost-backend edit: apply direction values to a latent file and render it.

A latent projected with `project --align auto` has its alignment beside it (LATENT.json): the
render is then blended back into the photo and the whole photo written."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import cast

from anycost.cli.options import parse_channels
from anycost.core.defaults import DEFAULT_MODEL
from anycost.core.errors import AnycostError

NAME = "edit"
HELP = "render a latent (.npy from `project`) with direction values, any sub-generator"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("latent", type=Path, help="W+ .npy ([n_style, D] or [1, n_style, D]) or w ([D])")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a direction value (repeatable)")
    p.add_argument("--channels", help="uniform ratio or per-layer widths (default: full)")
    p.add_argument("--resolution", type=int, help="stop at this resolution (default: full)")
    p.add_argument("--size", help="W,H of the output (default: the generator's)")
    p.add_argument("--photo", type=Path, help="the photo to blend an aligned face's render into (default: "
                                              "the one named in LATENT.json)")
    p.add_argument("--crop-only", action="store_true", help="write the model's image alone, not blended into "
                                                            "the photo")
    p.add_argument("--out", type=Path, required=True, help="OUT.png")


def parse_values(items: list[str]) -> dict[str, float]:
    values = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        try:
            if not sep or not name:
                raise ValueError
            values[name] = float(value)
        except ValueError:
            raise AnycostError(f"--set takes NAME=VALUE with a number, got {item!r}") from None
    return values


def run(args) -> int:
    import numpy as np
    import torch

    from anycost.cli.alignment_files import load_alignment, write_composited
    from anycost.cli.project import read_image
    from anycost.core.imaging import to_pil
    from anycost.editing.directions import apply_edit, load_directions
    from anycost.formats.registry import open_model
    from anycost.models import resolve_channels

    values = parse_values(args.set)
    try:
        arr = np.load(args.latent, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise AnycostError(f"cannot read {args.latent}: {e}") from None
    model = open_model(args.model)
    g = model.generator
    t = torch.from_numpy(np.asarray(arr, dtype=np.float32))
    if t.ndim == 1:
        t = t[None, None].expand(1, g.n_style, -1)
    elif t.ndim == 2:
        t = t[None]
    if t.shape[1:] != (g.n_style, g.cfg.style_dim) or t.shape[0] != 1:
        raise AnycostError(f"{args.latent}: expected W+ [1, {g.n_style}, {g.cfg.style_dim}], got {list(arr.shape)}")
    dirs = load_directions(model)
    missing = [n for n in values if n not in dirs]
    if missing:
        raise AnycostError(f"model has no direction {', '.join(map(repr, missing))}; it has: {', '.join(dirs)}")
    channels = parse_channels(args.channels)
    resolve_channels(g.cfg, channels)
    g.resolve_target_res(args.resolution)
    size = None
    if args.size:
        try:
            size = tuple(int(v) for v in args.size.split(","))
            assert len(size) == 2 and min(size) > 0
        except (ValueError, AssertionError):
            raise AnycostError(f"--size takes W,H positive integers, got {args.size!r}") from None
    aligned = None if args.crop_only else load_alignment(args.latent)
    if aligned is not None and size:
        raise AnycostError("--size does not apply when the render is blended into the photo (add --crop-only)")
    with torch.inference_mode():
        img = g.synthesis(apply_edit(t, dirs, values), channels=channels, target_res=args.resolution)
    if aligned is not None:
        face, photo, photo_size = aligned
        write_composited(args.out, read_image(args.photo or photo), face, img, photo_size)
        x, y, w, h = face.rect
        print(f"wrote {args.out} (the photo with {w}x{h} px at {x},{y} edited; "
              f"{', '.join(f'{k}={v:g}' for k, v in values.items()) or 'no edit'})")
        return 0
    pil = to_pil(img[0])
    if size:
        from PIL import Image
        # size: W,H, two values (checked above); PIL sets its filter names in a loop
        pil = pil.resize(cast("tuple[int, int]", size), Image.LANCZOS)  # type: ignore[attr-defined]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pil.save(args.out)
    print(f"wrote {args.out} ({pil.width}x{pil.height}; "
          f"{', '.join(f'{k}={v:g}' for k, v in values.items()) or 'no edit'})")
    return 0
