"""NVIDIA's StyleGAN2 network pickles (stylegan2-ada-pytorch, and the StyleGAN2 networks of the
stylegan3 release), read without running anything they carry.

Those files pickle each network as a `torch_utils.persistence` object: the module's source code
plus the object's state, rebuilt by `_reconstruct_persistent_obj`, which executes that source. Here
a restricted unpickler admits only the globals such files use and answers the reconstruct call with
an inert `Persistent` record (class name + state); tensors come back through
`torch.load(weights_only=True)`. Anything else in the file is refused, naming the global.

The generator `G_ema` then becomes our `Generator`: its architecture from the tensors' shapes and
the constructor arguments it recorded (`_init_kwargs`), its weights renamed (`_rename` below).
"""
from __future__ import annotations

import hashlib
import io
import pickle
import pickletools
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from anycost.core.errors import CheckpointError
from anycost.formats.checkpoints import load_state
from anycost.models import Generator, GeneratorConfig
from anycost.models.ops import make_blur_kernel

LICENCE_NVIDIA = "NVIDIA Source Code License-NC (non-commercial; NVIDIA's published networks and code)"


class PickleRefused(CheckpointError):
    """The pickle asks for something this reader does not admit (code, or a kind of network it
    cannot turn into ours); the message says what and why."""


@dataclass
class Persistent:
    """What `_reconstruct_persistent_obj` would have built, kept inert: the class name and the
    object's state (for a torch module: `_parameters`, `_buffers`, `_modules`, `_init_kwargs`, ...)."""
    class_name: str
    state: dict
    source_sha256: str           # of the module source the file carries (never run)

    def child(self, name: str) -> Persistent:
        modules = self.state.get("_modules") or {}
        c = modules.get(name)
        if not isinstance(c, Persistent):
            raise CheckpointError(f"{self.class_name} has no sub-network '{name}' (it has: {', '.join(modules)})")
        return c

    def children(self) -> dict[str, Persistent]:
        return {k: v for k, v in (self.state.get("_modules") or {}).items() if isinstance(v, Persistent)}

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Every parameter and buffer below this object, named by their path as in `state_dict()`."""
        out: dict[str, torch.Tensor] = {}
        for group in ("_parameters", "_buffers"):
            for k, v in (self.state.get(group) or {}).items():
                if isinstance(v, torch.Tensor):
                    out[prefix + k] = v.detach()
        for k, c in self.children().items():
            out.update(c.tensors(f"{prefix}{k}."))
        return out

    @property
    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs") or {})


class EasyDict(dict):
    """dnnlib.util.EasyDict: a dict whose keys read as attributes (only the data is kept)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


# ------------------------------------------------------------------------------ the unpickler

def _reconstruct(meta: Any) -> Persistent:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise PickleRefused("a persistent object of an unknown kind (expected a class with a state)")
    src = meta.get("module_src") or ""
    if not isinstance(src, str):
        raise PickleRefused("a persistent object whose source is not text")
    return Persistent(str(meta.get("class_name")), meta["state"], hashlib.sha256(src.encode()).hexdigest())


def _load_storage(data: bytes):
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    if hooks:
        raise PickleRefused("a tensor with backward hooks (code) attached")
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict())


def _rebuild_parameter(data, requires_grad, hooks):
    if hooks:
        raise PickleRefused("a parameter with backward hooks (code) attached")
    return torch.nn.Parameter(data, requires_grad)


def _plain_dtype(spec, align=False, copy=False):
    dtype = np.dtype(spec, align, copy)
    if dtype.kind not in "biufc":               # object, void, string dtypes: not in these files
        raise PickleRefused(f"numpy dtype {dtype} (only numbers are admitted)")
    return dtype


def _numpy_scalar(dtype, data=None):
    # the dtype's state may have been rewritten after _plain_dtype checked it (BUILD): check it again
    if (not isinstance(dtype, np.dtype) or dtype.kind not in "biufc" or dtype.fields is not None
            or dtype.hasobject or not isinstance(data, bytes)):
        raise PickleRefused("a numpy scalar that is not a plain number")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


ADMITTED: dict[tuple[str, str], Callable] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): OrderedDict,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("numpy", "dtype"): _plain_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,     # files written with numpy 1
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,    # ... and numpy 2
    ("builtins", "set"): set,                               # protocol <= 3 pickles an empty set so
    ("builtins", "frozenset"): frozenset,
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return ADMITTED[(module, name)]
        except KeyError:
            raise PickleRefused(f"refused: the pickle asks for {module}.{name}, which an NVIDIA StyleGAN2 "
                                "network pickle never holds; nothing in it was run (unpickling it the usual "
                                "way could run code)") from None

    def persistent_load(self, pid):
        raise PickleRefused(f"the pickle refers to an external object ({str(pid)[:40]}); not an NVIDIA network pickle")


# Opcodes that reach objects without find_class (the copyreg extension cache, persistent ids) or
# that NVIDIA's pickles never use; refused before unpickling starts.
_REFUSED_OPCODES = {"EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID", "INST", "OBJ"}
# torch.load(weights_only=True), which reads the storages, could run code before torch 2.6 (CVE-2025-32434)
_SAFE_TORCH = (2, 6)


def _check_opcodes(path: Path) -> None:
    with open(path, "rb") as f:
        try:
            for op, _, _ in pickletools.genops(f):
                if op.name in _REFUSED_OPCODES:
                    raise PickleRefused(f"refused: the pickle uses the {op.name} opcode, which an NVIDIA network "
                                        "pickle never does (it could reach code without naming it)")
        except (ValueError, EOFError) as e:
            raise CheckpointError(f"{path}: not a readable network pickle ({str(e)[:160]})") from None


def read_network_pickle(path: str | Path) -> dict:
    """The pickle's top-level dict (`G`, `D`, `G_ema`, ... as `Persistent` records), nothing run."""
    path = Path(path)
    if tuple(int(x) for x in torch.__version__.split(".")[:2]) < _SAFE_TORCH:
        raise CheckpointError(f"{path}: reading NVIDIA pickles safely needs torch >= 2.6 (this is {torch.__version__})")
    try:
        _check_opcodes(path)
        with open(path, "rb") as f:
            data = _Unpickler(f).load()
    except PickleRefused as e:
        raise PickleRefused(f"{path}: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RuntimeError, OverflowError, MemoryError) as e:
        raise CheckpointError(f"{path}: not a readable network pickle ({type(e).__name__}: {str(e)[:160]})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: the pickle holds a {type(data).__name__}, not a dict of networks")
    return data


# ------------------------------------------------------------------------------ G_ema -> Generator

def _refuse_other_generators(g: Persistent, path: Path) -> None:
    syn = g.child("synthesis")
    names = set(syn.children())
    if g.class_name != "Generator" or syn.class_name != "SynthesisNetwork":
        raise PickleRefused(f"{path}: G_ema is a {g.class_name} with a {syn.class_name}, not a StyleGAN2 generator")
    if "input" in names or any(re.fullmatch(r"L\d+_\d+_\d+", n) for n in names):
        raise PickleRefused(f"{path}: a StyleGAN3 (alias-free) generator (SynthesisInput, L0...): its layers "
                            "are not StyleGAN2's convolutions, so it cannot be opened as an anycost generator")
    if not names or not all(re.fullmatch(r"b\d+", n) for n in names):
        raise PickleRefused(f"{path}: a synthesis network with blocks {sorted(names)}: not StyleGAN2's b4, b8, ...")


def _check_supported(kw: dict, path: Path) -> tuple[dict, dict]:
    mk, sk = dict(kw.get("mapping_kwargs") or {}), dict(kw.get("synthesis_kwargs") or {})
    if int(kw.get("c_dim") or 0) > 0:
        raise PickleRefused(f"{path}: a conditional generator (c_dim={kw['c_dim']}): each image needs a class "
                            "label, which projecting and editing a photo cannot supply")
    if int(kw.get("img_channels", 3)) != 3:
        raise PickleRefused(f"{path}: draws {kw['img_channels']} channels, not RGB")
    if kw.get("z_dim") != kw.get("w_dim"):
        raise PickleRefused(f"{path}: z has {kw.get('z_dim')} dimensions and w {kw.get('w_dim')}; this generator "
                            "needs them equal (every published StyleGAN2 has 512 and 512)")
    if sk.get("architecture", "skip") != "skip":
        raise PickleRefused(f"{path}: synthesis architecture '{sk['architecture']}' (only StyleGAN2's 'skip', "
                            "the one of every published FFHQ/AFHQ/MetFaces network, is read)")
    if mk.get("layer_features") not in (None, kw.get("w_dim")) or mk.get("embed_features") not in (None, 0):
        raise PickleRefused(f"{path}: a mapping network with hidden width {mk.get('layer_features')} (only w_dim)")
    if mk.get("activation", "lrelu") != "lrelu" or sk.get("activation", "lrelu") != "lrelu":
        raise PickleRefused(f"{path}: activation other than leaky ReLU")
    if list(sk.get("resample_filter") or [1, 3, 3, 1]) != [1, 3, 3, 1]:
        raise PickleRefused(f"{path}: resampling filter {sk['resample_filter']} (only [1, 3, 3, 1])")
    return mk, sk


def generator_from_pickle(path: str | Path) -> tuple[Generator, dict]:
    """Our `Generator` computing what the pickle's `G_ema` computes in float32 (its fp16 layers are
    run in float32, as NVIDIA's `force_fp32=True`), and metadata saying where it came from."""
    path = Path(path)
    nets = read_network_pickle(path)
    try:
        return _generator(nets, path)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as e:   # odd values in its records
        raise CheckpointError(f"{path}: G_ema's description is not understood ({type(e).__name__}: "
                              f"{str(e)[:160]})") from None


def _generator(nets: dict, path: Path) -> tuple[Generator, dict]:
    g_rec = nets.get("G_ema")
    if not isinstance(g_rec, Persistent):
        raise CheckpointError(f"{path}: no G_ema network in the pickle (it holds: {', '.join(map(str, nets))})")
    _refuse_other_generators(g_rec, path)
    kw = g_rec.init_kwargs
    if g_rec.state.get("_init_args"):
        raise PickleRefused(f"{path}: G_ema was built with positional arguments; only keyword ones are read")
    mk, sk = _check_supported(kw, path)
    sd = g_rec.tensors()
    blocks = sorted(int(n[1:]) for n in g_rec.child("synthesis").children())
    resolution = int(kw.get("img_resolution") or blocks[-1])
    if blocks != [2 ** i for i in range(2, int(np.log2(resolution)) + 1)]:
        raise PickleRefused(f"{path}: blocks {blocks} do not run 4 px .. {resolution} px in powers of two")
    try:
        channels = {4: sd["synthesis.b4.const"].shape[0]}
        channels.update({r: sd[f"synthesis.b{r}.conv1.weight"].shape[0] for r in blocks[1:]})
        n_mlp = len([k for k in sd if re.fullmatch(r"mapping\.fc\d+\.weight", k)])
        style_dim = sd["mapping.fc0.weight"].shape[1]
    except KeyError as e:
        raise CheckpointError(f"{path}: G_ema lacks {e}: not a StyleGAN2 generator") from None
    clamp = sk.get("conv_clamp")
    cfg = GeneratorConfig(resolution, channels, style_dim=style_dim, n_mlp=n_mlp,
                          lr_mlp=float(mk.get("lr_multiplier", 0.01)),
                          conv_clamp=None if clamp is None else float(clamp),
                          extra={"source_layout": "nvidia-pickle"})
    g = Generator(cfg)
    ours = _rename(sd, cfg, path)
    load_state(g, ours, path)
    meta = {"name": path.stem, "source_layout": "nvidia-pickle", "sub_generators": False,
            "source": {"file": path.name, "class": f"{g_rec.class_name}", "code_sha256": g_rec.source_sha256,
                       "num_fp16_res": int(sk.get("num_fp16_res") or 0), "conv_clamp": clamp,
                       "channel_base": sk.get("channel_base"), "channel_max": sk.get("channel_max")}}
    return g.eval(), meta


def _rename(sd: dict[str, torch.Tensor], cfg: GeneratorConfig, path: Path) -> dict[str, torch.Tensor]:
    """NVIDIA's names and shapes -> ours (the layout of the official Anycost / rosinality files)."""
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()

    def take(key: str) -> torch.Tensor:
        used.add(key)
        return sd[key].float()

    for i in range(cfg.n_mlp):
        out[f"style.{i + 1}.weight"] = take(f"mapping.fc{i}.weight")
        out[f"style.{i + 1}.bias"] = take(f"mapping.fc{i}.bias")
    out["w_avg"] = take("mapping.w_avg")
    out["input.input"] = take("synthesis.b4.const")[None]

    def conv(ours: str, theirs: str, noise_index: int) -> None:
        out[f"{ours}.conv.weight"] = take(f"{theirs}.weight")[None]
        out[f"{ours}.conv.modulation.weight"] = take(f"{theirs}.affine.weight")
        out[f"{ours}.conv.modulation.bias"] = take(f"{theirs}.affine.bias")
        out[f"{ours}.noise.weight"] = take(f"{theirs}.noise_strength").reshape(1)
        out[f"{ours}.activate.bias"] = take(f"{theirs}.bias")
        out[f"noises.noise_{noise_index}"] = take(f"{theirs}.noise_const")[None, None]

    def to_rgb(ours: str, theirs: str) -> None:
        out[f"{ours}.conv.weight"] = take(f"{theirs}.weight")[None]
        out[f"{ours}.conv.modulation.weight"] = take(f"{theirs}.affine.weight")
        out[f"{ours}.conv.modulation.bias"] = take(f"{theirs}.affine.bias")
        out[f"{ours}.bias"] = take(f"{theirs}.bias").reshape(1, 3, 1, 1)

    try:
        conv("conv1", "synthesis.b4.conv1", 0)
        to_rgb("to_rgb1", "synthesis.b4.torgb")
        for j, res in enumerate(cfg.levels[1:]):
            conv(f"convs.{2 * j}", f"synthesis.b{res}.conv0", 2 * j + 1)
            conv(f"convs.{2 * j + 1}", f"synthesis.b{res}.conv1", 2 * j + 2)
            to_rgb(f"to_rgbs.{j}", f"synthesis.b{res}.torgb")
    except KeyError as e:
        raise CheckpointError(f"{path}: G_ema lacks {e}: not a StyleGAN2 generator (or one without noise inputs)") \
            from None
    # the FIR filters are constants of the architecture: check them, do not load them
    expected = make_blur_kernel(cfg.blur_kernel)
    for k in [k for k in sd if k.endswith("resample_filter")]:
        used.add(k)
        if sd[k].shape != expected.shape or not torch.allclose(sd[k].float(), expected, atol=1e-6):
            raise PickleRefused(f"{path}: {k} is not the [1, 3, 3, 1] filter this implementation uses")
    left = sorted(set(sd) - used)
    if left:
        raise PickleRefused(f"{path}: G_ema holds tensors this reader does not know: {', '.join(left[:5])}")
    return out
