"""anycost-backend import: any model file the project opens (an NVIDIA pickle, a StyleGAN2 or
Anycost checkpoint) or a published name, converted once into our safe format."""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

NAME = "import"
HELP = ("convert a model (NVIDIA .pkl, StyleGAN2/Anycost .pt, or a published name) into one .safetensors "
        "file that opens without unpickling, with its provenance in the metadata")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="a model file, or a name from `anycost-backend models list`")
    p.add_argument("--out", type=Path, help="the .safetensors to write (default: NAME.safetensors in the model "
                                            "folder, where --model NAME finds it)")
    p.add_argument("--name", help="the model's name (default: the source's)")
    p.add_argument("--as", dest="published", metavar="NAME",
                   help="the file is this published model (`models list`): its licence, face crop rule and "
                        "preview kind come with it")
    p.add_argument("--licence", help="the weights' licence, when the source does not say it (e.g. a fine-tune "
                                     "shared as a pickle)")
    p.add_argument("--half", action="store_true", help="store float16 (half the size; previews unchanged)")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def run(args) -> int:
    from anycost.core.errors import AnycostError
    from anycost.core.paths import models_dir
    from anycost.formats.checkpoints import SUFFIX, save_model
    from anycost.formats.registry import SOURCES, describe_source, open_model
    model = open_model(args.source)
    if args.published and args.published not in SOURCES:
        raise AnycostError(f"--as {args.published}: not a published model (see `anycost-backend models list`)")
    src = SOURCES.get(args.published or args.source)
    if src is not None and src.resolution != model.generator.cfg.resolution:
        raise AnycostError(f"{args.source} draws {model.generator.cfg.resolution} px; {src.name} is a "
                           f"{src.resolution} px model: not that file")
    if src is not None:
        describe_source(model.metadata, src)
    origin = Path(model.source)
    name = args.name or model.name
    out = args.out or models_dir() / f"{name}{SUFFIX}"
    if out.suffix != SUFFIX:
        raise AnycostError(f"--out must end in {SUFFIX}, got {out}")
    if out.resolve() == origin.resolve():
        raise AnycostError(f"--out is the source itself ({out})")
    meta = dict(model.metadata)
    meta["name"] = name
    meta["resolution"] = model.generator.cfg.resolution
    meta["licence"] = args.licence or meta.get("licence") or (
        "not stated by the file: the licence of wherever it came from applies (NVIDIA's published networks: "
        "NVIDIA Source Code License-NC)")
    meta["imported_from"] = {"file": origin.name, "sha256": sha256_of(origin),
                             "layout": meta.get("source_layout", "anycost-editor"),
                             **({"published_as": src.name, "url": src.url} if src else {})}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(out, model.generator, meta, extra_tensors=model.extra_tensors, half=args.half, encoder=model.encoder)
    cfg = model.generator.cfg
    print(f"wrote {out}: {name}, {cfg.resolution} px, W+ {cfg.n_style}x{cfg.style_dim}"
          + (f", activations clamped to ±{cfg.conv_clamp:g}" if cfg.conv_clamp else "")
          + f"; from {origin.name} (sha256 {meta['imported_from']['sha256'][:12]}); licence: {meta['licence']}")
    if meta.get("sub_generators") is False:
        print("  not trained for sub-generators: previews use full channels at lower resolutions until "
              "`anycost-train adapt` makes it an anycost model (docs/adapt.md)")
    return 0
