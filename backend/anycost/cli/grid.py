"""anycost-backend grid: a model's sub-generators side by side (the paper's figure), with their cost."""
from __future__ import annotations

import argparse
from pathlib import Path

NAME = "grid"
HELP = "render the paper-style grid (channel ratios x resolutions) of a model and print its MACs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="default: the built-in demo model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("anycost-grid.png"))


def run(args) -> int:
    import torch
    from PIL import Image

    from anycost.core.defaults import DEFAULT_MODEL, TRAINED_RATIOS
    from anycost.core.imaging import grid, to_pil
    from anycost.formats.registry import open_model
    from anycost.models.macs import count_macs

    model = open_model(args.model or DEFAULT_MODEL)
    g = model.generator
    z = torch.randn(1, g.cfg.style_dim, generator=torch.Generator().manual_seed(args.seed))
    resolutions = g.cfg.elastic_resolutions
    size = g.cfg.resolution
    tiles = []
    print(f"model {model.name}: {g.cfg.resolution}px; rows = channel ratio, columns = resolution")
    print("ratio  " + "  ".join(f"{r:>5}px MMACs" for r in resolutions))
    with torch.inference_mode():
        wplus = g.latent_to_wplus(z, truncation=0.7)
        for ratio in TRAINED_RATIOS:
            cells = []
            for res in resolutions:
                img = to_pil(g.synthesis(wplus, channels=ratio, target_res=res)[0])
                # PIL sets its filter names (Image.LANCZOS, ...) in a loop: mypy cannot see them
                tiles.append(_label(img.resize((size, size), Image.NEAREST),  # type: ignore[attr-defined]
                                    f"{ratio:g}x {res}px"))
                cells.append(f"{count_macs(g.cfg, ratio, res, include_mapping=False).true / 1e6:>11.1f}")
            print(f"{ratio:<5g}  " + "  ".join(cells))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid(tiles, cols=len(resolutions)).save(args.out)
    print(f"wrote {args.out}")
    return 0


def _label(img, text: str):
    from PIL import ImageDraw
    ImageDraw.Draw(img).text((3, 2), text, fill=(255, 255, 255), stroke_width=1, stroke_fill=(0, 0, 0))
    return img


