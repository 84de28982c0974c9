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
from anycost.models.creps import CrepsConfig, creps_architecture

STAGES = ("teacher", "renderer", "multires", "adach", "adapt")


@dataclass
class TrainConfig:
    stage: str = "multires"          # "teacher" or "renderer" (warm starts) | "multires" (stage 1) | "adach" (stage 2)
    #                                  | "adapt" (stage 2 without data: sub-generators fitted to the model's own images)
    arch: str = "demo-64"            # generator architecture name, or "custom" with `generator`
    generator: dict = field(default_factory=dict)   # GeneratorConfig.to_dict() for arch = "custom"
    data: str = "procedural"         # "procedural" (the face renderer), "teacher" (the teacher's samples)
                                     # or a folder of images
    teacher: str = ""                # a generator to learn from (anycost_train.teachers): "gan-face-generate"
                                     # or a model file; stage "teacher" regresses G(z) onto teacher(z[:dim])
    data_seed: int = 0
    flip: bool = True                # horizontal flips of folder images
    batch: int = 8                   # per process
    iters: int = 1000                # total iterations (the run stops there; --resume continues to it)
    lr: float = 0.002
    adv_weight: float = 0.0          # warm starts: weight of a discriminator's loss beside the regression
    feature_weight: float = 0.0      # stage "teacher": weight of matching the teacher's intermediate activations
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
    anchor_weight: float = 10.0      # stage adapt: weight of MSE + perceptual(full configuration, the original's
    #                                  image): keeps the full generator where it was (0: free to drift)
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
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if self.stage == "renderer" and self.data != "procedural":
            raise ValueError("the renderer warm start needs data = 'procedural' (its targets come from the renderer)")
        if (self.stage == "teacher" or self.data == "teacher") and not self.teacher:
            raise ValueError("stage 'teacher' and data 'teacher' need a teacher (e.g. --teacher gan-face-generate)")
        if self.arch != "custom" and self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown arch {self.arch!r}; known: {', '.join(ARCHITECTURES)}, custom")
        if self.channel_mode not in ("uniform", "flexible", "mixed"):
            raise ValueError(f"channel_mode must be uniform, flexible or mixed, got {self.channel_mode!r}")
        if self.stage == "adapt" and not self.init:
            raise ValueError("stage 'adapt' adapts a model: pass it as init (anycost-train adapt --model F)")
        if self.stage == "adapt" and self.adv_weight > 0 and (self.data != "teacher" or self.teacher != self.init):
            raise ValueError("stage 'adapt' with a discriminator shows it the original's samples: "
                             "data = 'teacher' and teacher = init")
        if self.anchor_weight < 0 or self.adv_weight < 0:
            raise ValueError("anchor_weight and adv_weight must be >= 0")
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
    # the built-in demo model (64 px faces from gan-face-generate), sized for a 2-core CPU: the paper's
    # stages with the teacher's samples as the real data, resumable
    "demo": {"arch": "demo-64", "data": "teacher", "teacher": "gan-face-generate", "n_res": 3, "batch": 8,
             "iters": 8000, "ema_kimg": 2.0, "sample_every": 250, "checkpoint_every": 250, "log_every": 20},
    # its warm start (stage "teacher"): G(z) regressed onto the teacher's image of z[:100]; supervised,
    # so the mapping network may learn faster
    "demo-warm": {"arch": "demo-64", "stage": "teacher", "teacher": "gan-face-generate", "n_res": 3,
                  "batch": 8, "iters": 5000, "ema_kimg": 1.0, "mapping_lr_scale": 100.0, "sample_every": 250,
                  "checkpoint_every": 250, "log_every": 20},
    # the first demo model's recipe (procedural faces at 128 px), kept for comparison
    "procedural-warm": {"arch": "demo-128", "stage": "renderer", "batch": 4, "iters": 7000, "ema_kimg": 1.0,
                        "mapping_lr_scale": 100.0, "sample_every": 500, "checkpoint_every": 500, "log_every": 20},
    # the paper's config-f at 1024 px (8 GPUs in the paper: batch 4 per GPU)
    "ffhq-1024": {"arch": "ffhq-1024", "batch": 4, "iters": 800000, "ema_kimg": 10.0, "amp": True,
                  "device": "cuda", "sample_every": 2000, "checkpoint_every": 5000, "log_every": 100},
}


def merged_options(presets: dict, preset: str | None, toml_path: Path | None, overrides: dict | None) -> dict:
    """A preset's options, then a TOML file's, then the command line's (those not None)."""
    values: dict = {}
    if preset:
        if preset not in presets:
            raise ValueError(f"unknown preset {preset!r}; known: {', '.join(presets)}")
        values.update(presets[preset])
    if toml_path:
        with open(toml_path, "rb") as f:
            values.update(tomllib.load(f))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return values


def load_config(preset: str | None = None, toml_path: Path | None = None, overrides: dict | None = None) -> TrainConfig:
    values = merged_options(PRESETS, preset, toml_path, overrides)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown option(s): {', '.join(sorted(unknown))}")
    if "betas" in values:
        values["betas"] = tuple(values["betas"])
    cfg = TrainConfig(**values)
    cfg.validate()
    return cfg


# --------------------------------------------------------------------------------- CREPS

@dataclass
class CrepsTrainConfig:
    arch: str = "creps-demo"         # a CREPS architecture name, or "custom" with `generator`
    generator: dict = dataclasses.field(default_factory=dict)   # CrepsConfig.to_dict() for "custom"
    data: str = "procedural"         # "procedural" or a folder of images
    data_seed: int = 0
    flip: bool = True
    # anycost model (file or name, e.g. "demo"): share its mapping network, distil toward its images
    teacher: str = ""
    distill_weight: float = 1.0      # weight of L1 + perceptual(CREPS, teacher) when there is a teacher
    adv_weight: float = 1.0          # weight of the adversarial loss (0: no discriminator at all)
    resolutions: tuple = ()          # whole-image training sizes sampled per step; () = res, res/2, res/4
    patch: int = 0                   # > 0: with probability patch_prob a step draws a patch x patch region
    patch_prob: float = 0.0          #   of the native-resolution image instead (distillation only): the
                                     #   finest detail is taught at the cost of a small image
    mixing: float = 0.0              # style mixing in the teacher's W+ (CREPS itself trains without)
    encoded: float = 0.0             # share of each distilled batch whose W+ are the teacher's encoder guesses
                                     #   of faces (what a projected photo has, off the mapping's distribution)
    batch: int = 8
    iters: int = 1000
    lr: float = 0.0025               # CREPS' G and D learning rate
    betas: tuple = (0.0, 0.99)
    r1_gamma: float = 10.0
    r1_every: int = 16
    pl_weight: float = 2.0           # StyleGAN2's path length (CREPS keeps it)
    pl_every: int = 4
    ema_kimg: float = 10.0
    device: str = "cpu"
    seed: int = 0
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 200

    def creps_config(self) -> CrepsConfig:
        return CrepsConfig.from_dict(self.generator) if self.arch == "custom" else creps_architecture(self.arch)

    def training_resolutions(self) -> list[int]:
        r = self.creps_config().resolution
        return sorted(self.resolutions or (r, r // 2, r // 4), reverse=True)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"], d["resolutions"] = list(self.betas), list(self.resolutions)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CrepsTrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        if unknown := set(d) - known:
            raise ValueError(f"unknown option(s): {', '.join(sorted(unknown))}")
        d = dict(d)
        for k in ("betas", "resolutions"):
            if k in d:
                d[k] = tuple(d[k])
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        cfg = self.creps_config()
        levels = cfg.levels
        if any(r not in levels or r < 8 for r in self.training_resolutions()):
            raise ValueError(f"resolutions must be levels of the {cfg.resolution} px model from 8 up, "
                             f"got {list(self.resolutions)}")
        if self.adv_weight < 0 or self.distill_weight < 0:
            raise ValueError("adv_weight and distill_weight must be >= 0")
        if self.adv_weight == 0 and not self.teacher:
            raise ValueError("without a teacher the adversarial loss is the only objective: adv_weight must be > 0")
        if self.batch < 1 or self.iters < 0:
            raise ValueError("batch must be >= 1 and iters >= 0")
        if not 0 <= self.encoded <= 1 or (self.encoded > 0 and not self.teacher):
            raise ValueError("encoded is a share from 0 to 1 of the teacher's latents: it needs a teacher")
        if self.patch_prob > 0 and not (self.teacher and 8 <= self.patch <= cfg.resolution):
            raise ValueError("native-resolution patches need a teacher and 8 <= patch <= the model's resolution")


CREPS_PRESETS = {
    # tests and smoke runs: seconds on a CPU
    "creps-tiny": {"arch": "custom", "batch": 2, "iters": 4, "log_every": 1, "sample_every": 2,
                   "checkpoint_every": 2, "r1_every": 2, "pl_every": 2, "resolutions": (16, 8),
                   "generator": CrepsConfig(16, style_dim=32, n_mlp=2, channel_base=512, channel_max=32, rank=4,
                                            pixel_dim=8, decoder_hidden=(8, 8, 8), head_widths=(8, 8)).to_dict()},
    # the built-in CREPS demo: the anycost demo model's W space, distilled on a CPU (no discriminator:
    # see docs/creps.md for why), on 64 and 32 px whole images; no encoded faces: half of each batch
    # stalled the distillation at the mean colour (docs/training.md, "The built-in demo model")
    "creps-demo": {"arch": "creps-demo", "teacher": "demo", "adv_weight": 0.0, "pl_weight": 0.0, "mixing": 0.5,
                   "batch": 8, "iters": 2000, "lr": 0.002, "ema_kimg": 2.0, "resolutions": (64, 32),
                   "log_every": 20, "sample_every": 250, "checkpoint_every": 250},
}


def load_creps_config(preset: str | None, toml_path: Path | None, overrides: dict) -> CrepsTrainConfig:
    return CrepsTrainConfig.from_dict(merged_options(CREPS_PRESETS, preset, toml_path, overrides))
