"""anycost-backend convert-creps: the official CREPS release, once and offline, into our format."""
from __future__ import annotations

import argparse
from pathlib import Path

NAME = "convert-creps"
HELP = ("convert an official CREPS generator (.pkl with --upstream-repo, or a .pt of G_ema.state_dict()) "
        "into our safe format; run once, offline; the daemon never unpickles")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", type=Path, help="creps-*.pkl, or a .pt holding G_ema.state_dict()")
    p.add_argument("--out", type=Path, required=True, help="the .safetensors file to write")
    p.add_argument("--upstream-repo", type=Path, help="a clone of VinAIResearch/CREPS (needed to unpickle a .pkl: "
                                                      "that runs the pickle's code, so only for files you trust)")
    p.add_argument("--name", default="", help="the model's name (default: the file's)")
    p.add_argument("--half", action="store_true", help="store float16")


def run(args) -> int:
    from anycost.formats.checkpoints import load_model
    from anycost.formats.creps import convert_official
    out = convert_official(args.source, args.out, args.upstream_repo, args.name, args.half)
    cfg = load_model(out, kind="creps").generator.cfg
    print(f"wrote {out}: CREPS {cfg.resolution}px, {cfg.num_ws} ws, widths up to {cfg.channel_max}, rank {cfg.rank}")
    return 0
