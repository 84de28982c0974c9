"""Training options: presets, a TOML file, command-line overrides, in that order."""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from anycost.models.config import ARCHITECTURES, GeneratorConfig, architecture


@dataclass
class TrainConfig:
    stage: str = "multires"          # "renderer" (warm start) | "multires" (stage 1) | "adach" (stage 2)
    arch: str = "demo-128"           # generator architecture name, or "custom" with `generator`
    generator: dict = field(default_factory=dict)   # GeneratorConfig.to_dict() for arch = "custom"
    data: str = "procedural"         # "procedural" (the face renderer) or a folder of images
    data_seed: int = 0
    flip: bool = True                # horizontal flips of folder images
    batch: int = 8                   # per process
    iters: int = 1000                # total iterations (the run stops there; --resume continues to it)
    lr: float = 0.002
    mapping_lr_scale: float = 1.0    # extra factor on the mapping network's learning rate (its layers already
                                     # have lr_mul 0.01); > 1 lets a short supervised warm start move W
    betas: tuple = (0.0, 0.99)
    r1_gamma: float = 10.0
    r1_every: int = 16               # lazy R1
    pl_weight: float = 0.0           # path-length regularisation (0 = off; the paper's stages turn it off)
    pl_every: int = 4
    mixing: float = 0.9              # style-mixing probability
    ema_kimg: float = 10.0           # EMA half-life in thousands of images (official: 0.5 ** (B / 10k))
    n_res: int = 4                   # multi-resolution levels (the last n_res)
    consistency_weight: float = 1.0  # stage 2: weight of MSE + perceptual(sub, full)
    channel_mode: str = "mixed"      # stage 2: "uniform" | "flexible" | "mixed" (half each)
    conditioned_d: bool = True       # stage 2: generator-conditioned discriminator
    init: str = ""                   # model file to start from: stage 2 needs stage 1's (channels get sorted);
                                     # stage 1 may start from a renderer warm start
    amp: bool = False                # bf16 autocast on CUDA
    device: str = "cpu"
    seed: int = 0
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 200
    half_checkpoints: bool = False   # store model files in float16

    def generator_config(self) -> GeneratorConfig:
        if self.arch == "custom":
            return GeneratorConfig.from_dict(self.generator)
        return architecture(self.arch)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    def validate(self) -> None:
        if self.stage not in ("renderer", "multires", "adach"):
            raise ValueError(f"stage must be 'renderer', 'multires' or 'adach', got {self.stage!r}")
        if self.stage == "renderer" and self.data != "procedural":
            raise ValueError("the renderer warm start needs data = 'procedural' (its targets come from the renderer)")
        if self.arch != "custom" and self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown arch {self.arch!r}; known: {', '.join(ARCHITECTURES)}, custom")
        if self.channel_mode not in ("uniform", "flexible", "mixed"):
            raise ValueError(f"channel_mode must be uniform, flexible or mixed, got {self.channel_mode!r}")
        if self.mapping_lr_scale <= 0:
            raise ValueError("mapping_lr_scale must be > 0")
        if self.batch < 1 or self.iters < 0:
            raise ValueError("batch must be >= 1 and iters >= 0")
        if not 1 <= self.n_res <= len(self.generator_config().levels) - 1:
            raise ValueError("n_res must be between 1 and the number of levels above 4 px")


TINY = {"arch": "custom", "batch": 4, "iters": 4, "n_res": 3, "log_every": 1, "sample_every": 2, "checkpoint_every": 2,
        "r1_every": 2, "generator": {"resolution": 32, "style_dim": 32, "n_mlp": 2,
                                     "channels": {"4": 32, "8": 32, "16": 16, "32": 8}}}
PRESETS = {
    # tests and smoke runs: seconds on a CPU
    "tiny": TINY,
    # the built-in demo model: sized for a 2-core CPU over a few hours, resumable
    "demo": {"arch": "demo-128", "batch": 8, "iters": 8000, "ema_kimg": 2.0, "sample_every": 500,
             "checkpoint_every": 500, "log_every": 20},
    # the demo model's warm start (stage "renderer"): supervised, so the mapping network may learn faster
    "demo-warm": {"arch": "demo-128", "stage": "renderer", "batch": 4, "iters": 7000, "ema_kimg": 1.0,
                  "mapping_lr_scale": 100.0, "sample_every": 500, "checkpoint_every": 500, "log_every": 20},
    # the paper's config-f at 1024 px (8 GPUs in the paper: batch 4 per GPU)
    "ffhq-1024": {"arch": "ffhq-1024", "batch": 4, "iters": 800000, "ema_kimg": 10.0, "amp": True,
                  "device": "cuda", "sample_every": 2000, "checkpoint_every": 5000, "log_every": 100},
}


def load_config(preset: str | None = None, toml_path: Path | None = None, overrides: dict | None = None) -> TrainConfig:
    values: dict = {}
    if preset:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        values.update(PRESETS[preset])
    if toml_path:
        with open(toml_path, "rb") as f:
            values.update(tomllib.load(f))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown option(s): {', '.join(sorted(unknown))}")
    if "betas" in values:
        values["betas"] = tuple(values["betas"])
    cfg = TrainConfig(**values)
    cfg.validate()
    return cfg
