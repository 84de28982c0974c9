"""Model files: our own format, the official Anycost GAN / rosinality StyleGAN2 checkpoints, and
NVIDIA's StyleGAN2 network pickles (read by `nvidia_pickle`, without running their code).

Our format is one safetensors file: tensors under prefixes (`g.` for the generator, later `encoder.`
and `directions.`), and a JSON metadata block under the header key "anycost" describing everything
needed to rebuild and use the model. safetensors cannot carry code, so opening a file never runs any.
Official `.pt` files are zip pickles; they are opened with `torch.load(weights_only=True)`, which
refuses any object that is not a tensor or a plain container, and their architecture is read off
the tensor shapes since they store none.
"""
from __future__ import annotations

import json
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import AbstractSet, Any, Generic, Literal, TypeVar, overload

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from anycost.core.errors import CheckpointError
from anycost.models import CrepsGenerator, Generator, GeneratorConfig
from anycost.models.encoder import Encoder, EncoderConfig, infer_encoder_config
from anycost.models.ops import make_blur_kernel

FORMAT_NAME = "anycost-editor"
FORMAT_VERSION = 1
SUFFIX = ".safetensors"


G = TypeVar("G", Generator, CrepsGenerator)
Kind = Literal["anycost", "creps"]


@dataclass
class Model(Generic[G]):
    """A loaded model of either kind: the generator (an anycost `Generator`, or a `CrepsGenerator`
    that draws at any size) plus what the file says about it. A CREPS model trained in another
    model's W space (metadata `w_space`) carries that model's encoder and directions."""
    generator: G
    metadata: dict = field(default_factory=dict)   # attributes, figures, provenance, ...
    source: str = ""                                # path or name it came from
    extra_tensors: dict = field(default_factory=dict)  # other prefixes (directions.)
    encoder: Encoder | None = None                      # image -> W+ guess, when the model has one

    @property
    def name(self) -> str:
        return self.metadata.get("name") or Path(self.source).stem

    @property
    def kind(self) -> Kind:
        return "creps" if isinstance(self.generator, CrepsGenerator) else "anycost"


AnycostModel = Model[Generator]
CrepsModel = Model[CrepsGenerator]


def check_kind(model: Model, kind: Kind | None, source: str) -> Model:
    """The model, if it is of `kind` (None: either); else a CheckpointError that says what it is."""
    if kind is not None and model.kind != kind:
        what = {"anycost": "an anycost generator (e.g. demo)", "creps": "a CREPS model (e.g. creps-demo)"}
        raise CheckpointError(f"{source} is {what[model.kind]}; this needs {what[kind]}")
    return model


# ------------------------------------------------------------------------------ our format

def write_container(path: Path, tensors: dict[str, torch.Tensor], meta: dict, half: bool = False) -> Path:
    """Our file: safetensors with the JSON metadata under "anycost", written atomically (a crash
    never leaves a half-written model). `half` stores floating tensors as float16."""
    meta = {**meta, "format": FORMAT_NAME, "version": FORMAT_VERSION}
    tensors = {k: (v.half() if half and v.is_floating_point() else v).detach().contiguous().cpu()
               for k, v in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"anycost": json.dumps(meta)})
    tmp.replace(path)
    return path


def read_metadata(path: Path) -> dict:
    """The metadata of our file, without reading its tensors."""
    try:
        with safe_open(str(path), "pt") as f:
            raw = (f.metadata() or {}).get("anycost")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable model file ({e})") from None
    if raw is None:
        raise CheckpointError(f"{path}: a safetensors file without Anycost metadata")
    return json.loads(raw)


def read_container(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and metadata of our file, checked to be ours and not newer than this program."""
    meta = read_metadata(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable model file ({e})") from None
    if meta.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: unknown format {meta.get('format')!r}")
    if int(meta.get("version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {meta['version']} is newer than this program "
                              f"understands ({FORMAT_VERSION}); update anycost")
    return tensors, meta


def save_model(path: str | Path, generator: Generator, metadata: dict | None = None,
               extra_tensors: dict[str, torch.Tensor] | None = None, half: bool = False,
               encoder: Encoder | None = None) -> Path:
    """Write a self-describing model file. `half` stores floating tensors as float16."""
    meta = dict(metadata or {})
    meta["generator"] = generator.cfg.to_dict()
    tensors = {f"g.{k}": v for k, v in generator.state_dict().items()}
    tensors.update(encoder_entries(encoder, meta))
    tensors.update(extra_tensors or {})
    return write_container(Path(path), tensors, meta, half)


def encoder_entries(encoder: Encoder | None, meta: dict) -> dict[str, torch.Tensor]:
    """The encoder's tensors (`encoder.*`) for a container; records (or clears) its description in `meta`."""
    meta.pop("encoder", None)
    if encoder is None:
        return {}
    meta["encoder"] = encoder.cfg.to_dict()
    return {f"encoder.{k}": v for k, v in encoder.state_dict().items()}


def encoder_from_container(tensors: dict[str, torch.Tensor], meta: dict, path) -> Encoder | None:
    if "encoder" not in meta:
        return None
    encoder = Encoder(EncoderConfig.from_dict(meta["encoder"]))
    e_sd = {k[len("encoder."):]: v.float() if v.is_floating_point() else v
            for k, v in tensors.items() if k.startswith("encoder.")}
    try:
        encoder.load_state_dict(e_sd)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: the encoder does not match its description ({str(e)[:160]})") from None
    return encoder.eval()


def _load_ours(path: Path) -> Model:
    tensors, meta = read_container(path)
    if "generator" not in meta and "creps" in meta:
        from anycost.formats.creps import creps_from_container
        return creps_from_container(tensors, meta, path)
    g = Generator(GeneratorConfig.from_dict(meta["generator"]))
    g_sd = {k[2:]: v.float() if v.is_floating_point() else v for k, v in tensors.items() if k.startswith("g.")}
    load_state(g, g_sd, path)
    encoder = encoder_from_container(tensors, meta, path)
    extra = {k: v for k, v in tensors.items() if not k.startswith(("g.", "encoder."))}
    return Model(g.eval(), meta, str(path), extra, encoder)


# ------------------------------------------------------------------------- official files

_KERNEL_KEY = re.compile(r"(convs\.\d+\.conv\.blur\.kernel|to_rgbs\.\d+\.upsample\.kernel)$")


def infer_config(sd: dict[str, torch.Tensor]) -> GeneratorConfig:
    """Read the architecture of an official/rosinality generator state dict off its tensor shapes."""
    try:
        n_mlp = len({k.split(".")[1] for k in sd if re.fullmatch(r"style\.\d+\.weight", k)})
        style_dim = sd["style.1.weight"].shape[1]
        n_blocks = len({k.split(".")[1] for k in sd if re.fullmatch(r"to_rgbs\.\d+\.bias", k)})
        resolution = 4 * 2 ** n_blocks
        channels = {4: sd["input.input"].shape[1]}
        for j in range(n_blocks):
            channels[8 * 2 ** j] = sd[f"convs.{2 * j}.conv.weight"].shape[1]
    except (KeyError, IndexError, AttributeError) as e:
        raise CheckpointError(f"not a StyleGAN2/Anycost generator state dict (missing {e})") from None
    if n_mlp == 0 or n_blocks == 0:
        raise CheckpointError("not a StyleGAN2/Anycost generator state dict (no mapping or no blocks)")
    return GeneratorConfig(resolution=resolution, channels=channels, style_dim=style_dim, n_mlp=n_mlp,
                           extra={"source_layout": "official"})


def generator_from_state_dict(sd: dict[str, torch.Tensor], source: str = "") -> Generator:
    """Build a generator from an official-layout state dict (keys as under `g_ema`)."""
    sd = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    cfg = infer_config(sd)
    g = Generator(cfg)
    expected = {4: make_blur_kernel(cfg.blur_kernel, 4.0)}
    kernels = {k: sd.pop(k) for k in list(sd) if _KERNEL_KEY.search(k)}
    for k, v in kernels.items():  # the official files store the (constant) FIR kernels; check, don't load
        if v.shape != expected[4].shape or not torch.allclose(v.float(), expected[4], atol=1e-6):
            raise CheckpointError(f"{source}: {k} is not the [1,3,3,1] kernel this implementation uses")
    has_w_avg = "w_avg" in sd
    load_state(g, {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}, source,
                allow_missing={"w_avg"})
    if not has_w_avg:
        g.update_w_avg()
    return g.eval()


def _load_official(path: Path) -> Model:
    obj = top = _torch_load(path)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    for key in ("g_ema", "state_dict", "generator"):
        if isinstance(obj.get(key), dict) and any(k.startswith("style.") for k in obj[key]):
            obj = obj[key]
            break
    if not any(k.startswith("style.") for k in obj):
        keys = ", ".join(list(obj)[:6])
        raise CheckpointError(f"{path}: no generator weights found (top-level keys: {keys}); "
                              f"expected an Anycost/StyleGAN2 file with 'g_ema'")
    # rosinality's conversion of NVIDIA's TF networks keeps their mean w beside g_ema: the truncation centre
    latent_avg = top.get("latent_avg")
    if "w_avg" not in obj and isinstance(latent_avg, torch.Tensor) and latent_avg.ndim == 1:
        obj = dict(obj, w_avg=latent_avg)
    g = generator_from_state_dict(obj, str(path))
    return Model(g, {"name": path.stem.removeprefix("generator_"), "source_layout": "official"}, str(path))


def _torch_load(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsupported content"
        raise CheckpointError(f"{path}: refused to load: the file holds more than tensors and would run "
                              f"code when unpickled ({first[:160]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({str(e).splitlines()[0][:160]})") from None


def load_state(g: torch.nn.Module, sd: dict, source, allow_missing: AbstractSet[str] = frozenset()) -> None:
    """Load `sd` into `g` after checking every name and shape; the error names the first mismatches."""
    own = g.state_dict()
    missing = sorted(set(own) - set(sd) - set(allow_missing))
    unexpected = sorted(set(sd) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{source}: layout mismatch (missing {missing[:4]}, unexpected {unexpected[:4]})")
    for k, v in sd.items():
        if v.shape != own[k].shape:
            raise CheckpointError(f"{source}: {k} has shape {list(v.shape)}, expected {list(own[k].shape)}")
    g.load_state_dict(sd, strict=False)


def load_official_encoder(path: str | Path) -> Encoder:
    """An official `encoder_<config>.pt` (weights under 'state_dict', torchvision ResNet names)."""
    path = Path(path)
    obj = _torch_load(path)
    sd = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(sd, dict) or "fc.weight" not in sd or "mean_latent" not in sd:
        raise CheckpointError(f"{path}: not an Anycost encoder (expected 'state_dict' with fc and mean_latent)")
    try:
        enc = Encoder(infer_encoder_config(sd))
        enc.load_state_dict(sd)
    except (KeyError, RuntimeError) as e:
        raise CheckpointError(f"{path}: encoder layout not understood ({str(e)[:160]})") from None
    return enc.eval()


# ------------------------------------------------------------------------------ dispatch

@overload
def load_model(path: str | Path, kind: Literal["anycost"] = ...) -> AnycostModel: ...
@overload
def load_model(path: str | Path, kind: Literal["creps"]) -> CrepsModel: ...
@overload
def load_model(path: str | Path, kind: None) -> Model[Any]: ...


def load_model(path: str | Path, kind: Kind | None = "anycost") -> Model:
    """Open a model file (decided by content, not by name): our format, of either kind, an official
    Anycost/StyleGAN2 checkpoint, or an NVIDIA StyleGAN2 network pickle. `kind`: what the caller
    needs (None: either), refused with a message that says what the file holds otherwise."""
    return check_kind(_load_file(Path(path).expanduser()), kind, str(path))


def _load_file(path: Path) -> Model:
    if not path.is_file():
        raise CheckpointError(f"model file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(16)
    # safetensors first: an 8-byte little-endian header length, then the JSON header. Its length bytes
    # can be anything, "PK" or 0x80 included, so they must not be read as a zip or pickle signature.
    if len(head) >= 9 and head[8:9] == b"{" and 8 + int.from_bytes(head[:8], "little") <= path.stat().st_size:
        return _load_ours(path)
    if head[:2] == b"PK" or head[:4] == b"\x80\x02\x8a\x0a":   # zip (torch.save) or its legacy format
        return _load_official(path)
    if head[:1] == b"\x80":                                 # a raw pickle: NVIDIA's network pickles
        from anycost.formats.nvidia_pickle import generator_from_pickle
        g, meta = generator_from_pickle(path)
        return Model(g, meta, str(path))
    raise CheckpointError(f"{path}: not a model file (neither Anycost safetensors, a PyTorch checkpoint nor "
                          "an NVIDIA network pickle)")
