"""Write network pickles the way NVIDIA's `torch_utils.persistence` does (the same globals, the
same state layout), from `Persistent` records: a generator of ours in NVIDIA's layout (other sizes
than the fixture's), or the fixture's records changed (what the reader must refuse).

The persistence and dnnlib modules are stand-ins registered only while pickling; their reconstruct
function is never what the reader calls."""
from __future__ import annotations

import io
import pickle
import sys
import types
from collections import OrderedDict
from contextlib import contextmanager

import torch

from anycost.formats.nvidia_pickle import EasyDict, Persistent
from anycost.models import Generator


def _reconstruct_persistent_obj(meta):      # the stand-in: pickled by name, never called
    raise AssertionError("not called")


class _EasyDict(dict):
    pass


@contextmanager
def _stand_in_modules():
    persistence = types.ModuleType("torch_utils.persistence")
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util = types.ModuleType("dnnlib.util")
    _EasyDict.__module__, _EasyDict.__qualname__, _EasyDict.__name__ = "dnnlib.util", "EasyDict", "EasyDict"
    util.EasyDict = _EasyDict
    added = {"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence,
             "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util}
    added = {k: v for k, v in added.items() if k not in sys.modules}
    sys.modules.update(added)
    try:
        yield
    finally:
        for k in added:
            sys.modules.pop(k, None)


class _Pickler(pickle.Pickler):
    def __init__(self, f, module_src: str):
        super().__init__(f, protocol=4)
        self.module_src = module_src

    def reducer_override(self, obj):
        if isinstance(obj, Persistent):
            meta = {"type": "class", "version": 6, "module_src": self.module_src, "class_name": obj.class_name,
                    "state": obj.state}
            return _reconstruct_persistent_obj, (meta,)
        if isinstance(obj, EasyDict):
            return _EasyDict, (), None, None, iter(obj.items())
        return NotImplemented


def write_pickle(networks: dict, module_src: str = "# the network's code would be here\n") -> bytes:
    buf = io.BytesIO()
    with _stand_in_modules():
        _Pickler(buf, module_src).dump(networks)
    return buf.getvalue()


# ------------------------------------------------------------------------------ our generator -> NVIDIA

def _module(class_name: str, params=None, buffers=None, modules=None, **attrs) -> Persistent:
    state = {"training": False, "_parameters": OrderedDict(params or {}), "_buffers": OrderedDict(buffers or {}),
             "_non_persistent_buffers_set": set(), "_modules": OrderedDict(modules or {}), **attrs}
    return Persistent(class_name, state, "")


def _param(t: torch.Tensor) -> torch.nn.Parameter:
    return torch.nn.Parameter(t.detach().clone(), requires_grad=False)


def _fc(weight: torch.Tensor, bias: torch.Tensor) -> Persistent:
    return _module("FullyConnectedLayer", {"weight": _param(weight), "bias": _param(bias)})


def nvidia_generator(g: Generator, c_dim: int = 0) -> Persistent:
    """`g` as stylegan2-ada-pytorch's G_ema would hold it (names, shapes, `_init_kwargs`)."""
    cfg, sd = g.cfg, g.state_dict()
    filt = torch.tensor([1.0, 3.0, 3.0, 1.0])
    filt = (filt[:, None] * filt[None, :]) / 64

    def layer(ours: str, noise: int) -> Persistent:
        return _module("SynthesisLayer",
                       {"weight": _param(sd[f"{ours}.conv.weight"][0]), "noise_strength": _param(
                           sd[f"{ours}.noise.weight"].reshape(())), "bias": _param(sd[f"{ours}.activate.bias"])},
                       {"resample_filter": filt.clone(), "noise_const": sd[f"noises.noise_{noise}"][0, 0].clone()},
                       {"affine": _fc(sd[f"{ours}.conv.modulation.weight"], sd[f"{ours}.conv.modulation.bias"])})

    def torgb(ours: str) -> Persistent:
        return _module("ToRGBLayer", {"weight": _param(sd[f"{ours}.conv.weight"][0]),
                                      "bias": _param(sd[f"{ours}.bias"].reshape(3))}, {},
                       {"affine": _fc(sd[f"{ours}.conv.modulation.weight"], sd[f"{ours}.conv.modulation.bias"])})

    blocks = {"b4": _module("SynthesisBlock", {"const": _param(sd["input.input"][0])},
                            {"resample_filter": filt.clone()}, {"conv1": layer("conv1", 0), "torgb": torgb("to_rgb1")})}
    for j, res in enumerate(cfg.levels[1:]):
        blocks[f"b{res}"] = _module("SynthesisBlock", {}, {"resample_filter": filt.clone()},
                                    {"conv0": layer(f"convs.{2 * j}", 2 * j + 1),
                                     "conv1": layer(f"convs.{2 * j + 1}", 2 * j + 2), "torgb": torgb(f"to_rgbs.{j}")})
    mapping = _module("MappingNetwork", {}, {"w_avg": sd["w_avg"].clone()},
                      {f"fc{i}": _fc(sd[f"style.{i + 1}.weight"], sd[f"style.{i + 1}.bias"]) for i in range(cfg.n_mlp)})
    kwargs = EasyDict(z_dim=cfg.style_dim, c_dim=c_dim, w_dim=cfg.style_dim, img_resolution=cfg.resolution,
                      img_channels=3, mapping_kwargs=EasyDict(num_layers=cfg.n_mlp, lr_multiplier=cfg.lr_mlp),
                      synthesis_kwargs=EasyDict(channel_base=0, channel_max=max(cfg.channels.values()),
                                                num_fp16_res=0, conv_clamp=cfg.conv_clamp))
    return _module("Generator", {}, {}, {"synthesis": _module("SynthesisNetwork", modules=blocks), "mapping": mapping},
                   _init_args=(), _init_kwargs=kwargs, z_dim=cfg.style_dim, w_dim=cfg.style_dim)
