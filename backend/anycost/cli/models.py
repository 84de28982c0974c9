"""anycost-backend models: list local models, download official ones."""
from __future__ import annotations

import argparse

from anycost.core.defaults import DEFAULT_MODEL
from anycost.core.paths import models_dir

NAME = "models"
HELP = "list the models available locally, or pull an official one"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, parser_class=type(p))
    sub.add_parser("list", help="show official names (downloaded or not) and the model folder's files")
    info = sub.add_parser("info", help="a model's architecture, directions (with ranges) and encoder")
    info.add_argument("name", help="path, official name, or random:ARCH")
    pull = sub.add_parser("pull", help="download an official generator into the model folder")
    pull.add_argument("name", help="an official name (see `models list`)")
    pull.add_argument("--sha256", help="expected SHA-256 of the file (the release publishes none)")
    pull.add_argument("--force", action="store_true", help="download again even if present")
    pull.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from anycost.formats import registry
    from anycost.models import ARCHITECTURES

    if args.action == "info":
        return info(args.name)
    if args.action == "pull":
        path = registry.pull(args.name, sha256=args.sha256, force=args.force, progress=not args.quiet)
        print(f"{args.name}: {path}")
        return 0
    print(f"model folder: {models_dir()}")
    from anycost.formats.creps import BUILTIN_CREPS_DEMO, BUILTIN_CREPS_DEMO_NAME
    from anycost.models.creps import CREPS_ARCHITECTURES
    for name, path, what in ((DEFAULT_MODEL, registry.BUILTIN_DEMO, "anycost"),
                             (BUILTIN_CREPS_DEMO_NAME, BUILTIN_CREPS_DEMO, "CREPS, any output size")):
        state = f"built in ({what})" if path.is_file() else f"missing ({path})"
        print(f"  {name:34s} {'':11s}  {state}")
    for e in registry.list_models():
        size = f"{e.bytes / 1e6:8.1f} MB" if e.path else " " * 11
        print(f"  {e.name:34s} {size}  {e.note}")
    print(f"  {'random:ARCH[:SEED]':34s} {'':11s}  untrained networks; ARCH in "
          f"{', '.join([*ARCHITECTURES, *CREPS_ARCHITECTURES])}")
    return 0


def info(spec: str) -> int:
    from anycost.formats import registry
    from anycost.models import TRAINED_RATIOS
    from anycost.models.macs import count_macs

    model = registry.open_model(spec, kind=None)
    if model.kind == "creps":
        return creps_info(model)
    cfg = model.generator.cfg
    print(f"model {model.name} ({model.source})")
    print(f"  generator: {cfg.resolution} px, style_dim {cfg.style_dim}, n_mlp {cfg.n_mlp}, W+ rows {cfg.n_style}, "
          f"{sum(p.numel() for p in model.generator.parameters()) / 1e6:.2f} M parameters, "
          f"{count_macs(cfg).true / 1e9:.2f} GMACs")
    print("  channels per resolution: " + ", ".join(f"{r}:{c}" for r, c in sorted(cfg.channels.items())))
    if model.metadata.get("sub_generators", True):
        ratios = ", ".join(f"{r:g}" for r in TRAINED_RATIOS)
        print(f"  previews: sub-generators (channel ratios {ratios} at {cfg.elastic_resolutions} px)")
    else:
        print(f"  previews: full channels at {cfg.elastic_resolutions} px (its own lower-resolution outputs): "
              "not trained for sub-generators")
    figures = (model.metadata.get("figures") or {}).get("consistency")
    print("  agreement with the final: " + ("carried by the file (" + ", ".join(
        f"{f['ratio']:g}x@{f['resolution']} {f['psnr']:.1f} dB" for f in figures) + ")" if figures else
        "measured by the daemon when it first serves the model, then cached"))
    if cfg.conv_clamp is not None:
        print(f"  activations clamped to ±{cfg.conv_clamp:g} (NVIDIA's conv_clamp)")
    if model.metadata.get("imported_from"):
        src = model.metadata["imported_from"]
        print(f"  imported from {src['file']} ({src['layout']}, sha256 {src['sha256'][:16]}...)")
    if model.encoder is not None:
        e = model.encoder.cfg
        print(f"  encoder: yes ({'bottleneck' if e.bottleneck else 'basic'} ResNet, widths {list(e.widths)}, "
              f"blocks {list(e.blocks)}, input {e.input_size} px)")
    else:
        print("  encoder: no (projection starts from the mean latent)")
    print_directions_and_notes(model)
    return 0


def creps_info(model) -> int:
    cfg = model.generator.cfg
    print(f"model {model.name} ({model.source})")
    print(f"  CREPS generator: trained at {cfg.resolution} px, drawn at any size; style_dim {cfg.style_dim}, "
          f"n_mlp {cfg.n_mlp}, W+ rows {cfg.num_ws}, "
          f"{sum(p.numel() for p in model.generator.parameters()) / 1e6:.2f} M parameters")
    print("  line widths per block: " + ", ".join(f"{r}:{cfg.channels(r)}" for r in cfg.levels)
          + f"; rank {cfg.rank}, pixel features {cfg.pixel_dim}")
    w_space = model.metadata.get("w_space")
    if w_space:
        print(f"  W space: shared with {w_space['model']} (its encoder and directions)")
    print(f"  encoder: {'yes' if model.encoder is not None else 'no (projection starts from the mean latent)'}")
    print_directions_and_notes(model)
    return 0


def print_directions_and_notes(model) -> None:
    from anycost.editing.directions import load_directions
    print("  directions:")
    for d in load_directions(model).values():
        named = {e["name"]: e for e in model.metadata.get("directions", [])}
        how = ", named by eye" if named.get(d.name, {}).get("named_by") == "eye" else ""
        print(f"    {d.name:16s} {d.min:g}..{d.max:g}  ({d.source}{how})")
    if model.metadata.get("untrained"):
        print("  note: untrained (random weights)")
    if model.metadata.get("licence"):
        print(f"  licence: {model.metadata['licence']}")
