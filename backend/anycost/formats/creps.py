"""CREPS model files: our safetensors format (tensors under `creps.`, the configuration in the
metadata), and the one-time offline conversion of the official release.

The official CREPS checkpoints are pickles that need the authors' training code to unpickle, which
runs code; the converter does that once, offline, when the user asks, and writes our format. The
daemon only ever loads our format."""
from __future__ import annotations

import pickle
import re
import sys
from pathlib import Path

import torch

from anycost.core.defaults import DATA_DIR
from anycost.core.errors import CheckpointError
from anycost.formats.checkpoints import (
    CrepsModel,
    Model,
    _torch_load,
    encoder_entries,
    encoder_from_container,
    load_state,
    write_container,
)
from anycost.models.creps import CrepsConfig, CrepsGenerator
from anycost.models.encoder import Encoder

# the built-in CREPS demo model shipped inside the package (trained by `anycost-train creps --preset creps-demo`)
BUILTIN_CREPS_DEMO_NAME = "creps-demo"
BUILTIN_CREPS_DEMO = DATA_DIR / "creps-demo.safetensors"

# built by upstream but never run, or recomputed by us: dropped by the converter
_UNUSED = ("synthesis.b4.tores.", "synthesis.decoder_8.", "synthesis.b4.input.coords")


def save_creps(path: str | Path, g: CrepsGenerator, metadata: dict | None = None, half: bool = False,
               encoder: Encoder | None = None, extra_tensors: dict | None = None) -> Path:
    meta = {**(metadata or {}), "creps": g.cfg.to_dict()}
    tensors = {f"creps.{k}": v for k, v in g.state_dict().items()}
    tensors.update(encoder_entries(encoder, meta))
    tensors.update(extra_tensors or {})
    return write_container(Path(path), tensors, meta, half)


def creps_from_container(tensors: dict, meta: dict, path: Path) -> CrepsModel:
    """The CREPS model of our file's tensors and metadata (checkpoints.load_model calls this). Its
    encoder, when it shares an anycost model's W space, guesses one W+ row fewer (`wplus_from_anycost`)."""
    g = CrepsGenerator(CrepsConfig.from_dict(meta["creps"]))
    sd = {k[len("creps."):]: v.float() if v.is_floating_point() else v for k, v in tensors.items()
          if k.startswith("creps.")}
    load_state(g, sd, path)
    extra = {k: v for k, v in tensors.items() if not k.startswith(("creps.", "encoder."))}
    return Model(g.eval(), meta, str(path), extra, encoder_from_container(tensors, meta, path))


def random_creps(spec: str) -> CrepsModel:
    """`random:creps-ARCH[:SEED]`: an untrained CREPS generator of a named architecture (timing, tests)."""
    from anycost.models.creps import creps_architecture
    parts = spec.split(":")
    try:
        seed = int(parts[2]) if len(parts) > 2 else 0
    except ValueError:
        raise CheckpointError(f"bad seed in {spec!r}") from None
    try:
        cfg = creps_architecture(parts[1])
    except ValueError as e:
        raise CheckpointError(f"{spec!r}: {e}") from None
    torch.manual_seed(seed)
    return Model(CrepsGenerator(cfg).eval(), {"name": spec, "untrained": True}, spec)


# ------------------------------------------------------------------------------- conversion

def infer_config(sd: dict[str, torch.Tensor]) -> CrepsConfig:
    """The configuration of an official CREPS generator, read off its tensor shapes."""
    try:
        levels = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"synthesis\.b(\d+)\.fc1\.weight", k)))
        widths = {r: sd[f"synthesis.b{r}.fc1.weight"].shape[0] for r in levels}
        style_dim = sd["mapping.fc0.weight"].shape[1]
        n_mlp = len([k for k in sd if k.startswith("mapping.fc") and k.endswith(".weight")])
        inp = sd["synthesis.b4.input.weight"]                                 # [1, C0, 1, 2R]
        rank = inp.shape[3] // 2
        pixel_dim = sd[f"synthesis.b{levels[-1]}.tores.weight"].shape[0]
        dec = [sd[f"synthesis.decoder_last.{i}.weight"].shape[0] for i in range(4)]
        head = [sd[f"synthesis.block{i}.fc1.weight"].shape[0] for i in range(2)]
        freqs = sd["synthesis.b4.input.freqs"]
    except (KeyError, IndexError, ValueError) as e:
        raise CheckpointError(f"not an official CREPS generator (missing {e})") from None
    resolution = levels[-1]
    channel_max = max(widths.values())
    top = widths[resolution]
    channel_base = top * resolution if top < channel_max else channel_max * resolution
    cfg = CrepsConfig(resolution, style_dim=style_dim, n_mlp=n_mlp, channel_base=channel_base,
                      channel_max=channel_max, rank=rank, pixel_dim=pixel_dim, decoder_hidden=tuple(dec[:3]),
                      head_widths=tuple(head), bandwidth=float(freqs.std()) if freqs.numel() > 1 else 10.0)
    if any(cfg.channels(r) != w for r, w in widths.items()):
        raise CheckpointError(f"widths {widths} do not follow min(base / r, max)")
    coords = sd.get("synthesis.b4.input.coords")                       # [1, N_train, 2, 1]
    if coords is not None and coords.shape[1] != resolution:
        raise CheckpointError(f"coords of {coords.shape[1]} samples for a {resolution}px generator")
    return cfg


def official_state_dict(src: Path, upstream_repo: Path | None = None) -> dict[str, torch.Tensor]:
    """G_ema's tensors from an official `.pkl` (unpickled with the authors' code, which runs code:
    only for files you trust) or from a `.pt` holding `G_ema.state_dict()` (no code)."""
    if src.suffix == ".pkl":
        if upstream_repo is None:
            raise CheckpointError("an official .pkl can only be unpickled with the CREPS repository's code: "
                                  "pass --upstream-repo DIR (a clone of VinAIResearch/CREPS)")
        sys.path.insert(0, str(upstream_repo))
        try:
            with open(src, "rb") as f:
                obj = pickle.load(f)          # runs the pickle's code: the user asked for it, once
        except (ModuleNotFoundError, pickle.UnpicklingError, EOFError) as e:
            raise CheckpointError(f"{src}: could not unpickle ({e})") from None
        finally:
            sys.path.remove(str(upstream_repo))
        g = obj.get("G_ema") if isinstance(obj, dict) else None
        if g is None:
            raise CheckpointError(f"{src}: no G_ema in the pickle")
        return {k: v.detach().float().cpu() for k, v in g.state_dict().items()}
    obj = _torch_load(src)
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{src}: expected a state_dict of G_ema")
    return obj


def convert_official(src: str | Path, dst: str | Path, upstream_repo: str | Path | None = None,
                     name: str = "", half: bool = False) -> Path:
    src = Path(src).expanduser()
    sd = official_state_dict(src, Path(upstream_repo) if upstream_repo else None)
    cfg = infer_config(sd)
    g = CrepsGenerator(cfg)
    load_state(g, {k: v for k, v in sd.items() if not k.startswith(_UNUSED)}, src)
    meta = {"name": name or src.stem, "converted_from": src.name,
            "resolution": cfg.resolution, "num_ws": cfg.num_ws}
    return save_creps(dst, g, meta, half=half)


__all__ = ["convert_official", "creps_from_container", "infer_config", "random_creps", "save_creps"]
