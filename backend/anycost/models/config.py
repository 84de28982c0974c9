"""Architecture description of an anycost generator: what a checkpoint must carry to rebuild it."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

# The official base channel table (before the multiplier and the clamp), shared by Anycost GAN,
# rosinality's StyleGAN2 and the official uniform-ratio rule for sub-generators.
BASE_CHANNELS = {4: 4096, 8: 2048, 16: 1024, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16,
                 2048: 8, 4096: 4}


@dataclass(frozen=True)
class GeneratorConfig:
    resolution: int                    # Output resolution of the full generator (power of two, >= 8).
    channels: dict[int, int]           # Feature width per resolution level 4..resolution.
    style_dim: int = 512               # Width of z, w and the mapping network.
    n_mlp: int = 8                     # Linear layers in the mapping network.
    lr_mlp: float = 0.01               # Equalised-LR multiplier of the mapping network.
    blur_kernel: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)   # FIR taps of every 2x upsampling.
    # Activations of every conv and toRGB clamped to [-c, c] (NVIDIA's StyleGAN2-ADA `conv_clamp`,
    # 256 in its configs); None: unclamped (Anycost GAN, rosinality).
    conv_clamp: float | None = None
    # Smallest resolution trained and offered as a preview (0: the last four levels, as the official
    # models). Not compared: it changes what is offered, not the weights.
    elastic_min: int = field(default=0, compare=False)
    extra: dict = field(default_factory=dict, compare=False)  # Free-form notes (e.g. the source).

    def __post_init__(self):
        r = self.resolution
        if r < 8 or r & (r - 1) or r not in BASE_CHANNELS:
            raise ValueError(f"resolution must be a power of two from 8 to 4096, got {r}")
        levels = self.levels
        if sorted(self.channels) != levels:
            raise ValueError(f"channels must list every level {levels}, got {sorted(self.channels)}")
        if any(c < 1 for c in self.channels.values()):
            raise ValueError("every level needs at least one channel")
        if self.conv_clamp is not None and not self.conv_clamp > 0:
            raise ValueError(f"conv_clamp must be positive or None, got {self.conv_clamp}")

    @classmethod
    def from_multiplier(cls, resolution: int, channel_multiplier: float = 2, channel_max: int = 512,
                        **kwargs) -> "GeneratorConfig":
        """The official constructor's rule: min(channel_max, int(base[res] * multiplier))."""
        levels = [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]
        channels = {r: min(channel_max, int(BASE_CHANNELS[r] * channel_multiplier)) for r in levels}
        return cls(resolution=resolution, channels=channels, **kwargs)

    @property
    def log_res(self) -> int:
        return int(math.log2(self.resolution))

    @property
    def levels(self) -> list[int]:
        return [2 ** i for i in range(2, self.log_res + 1)]

    @property
    def n_style(self) -> int:
        """Rows of W+: one per modulated layer (convs and toRGBs share rows as in the official code)."""
        return self.log_res * 2 - 2

    @property
    def num_layers(self) -> int:
        """Styled convs, each with its own noise input."""
        return (self.log_res - 2) * 2 + 1

    @property
    def n_channel_entries(self) -> int:
        """Length of a per-layer channel configuration: constant input, conv1, then every conv."""
        return self.num_layers + 1

    @property
    def full_channels(self) -> list[int]:
        """Per-layer widths of the full generator, in channel-configuration order."""
        out = [self.channels[4], self.channels[4]]
        for r in self.levels[1:]:
            out += [self.channels[r], self.channels[r]]
        return out

    @property
    def layer_resolutions(self) -> list[int]:
        """Resolution at which each channel-configuration entry operates."""
        return [4, 4] + [r for r in self.levels[1:] for _ in range(2)]

    @property
    def elastic_resolutions(self) -> list[int]:
        """The resolutions an anycost generator is trained to stop at: the last four levels, none
        below `elastic_min`."""
        return [r for r in self.levels[-4:][::-1] if r >= self.elastic_min]

    def to_dict(self) -> dict:
        out = {"resolution": self.resolution, "style_dim": self.style_dim, "n_mlp": self.n_mlp,
               "lr_mlp": self.lr_mlp, "blur_kernel": list(self.blur_kernel), "elastic_min": self.elastic_min,
               "channels": {str(k): v for k, v in sorted(self.channels.items())}, "extra": self.extra}
        if self.conv_clamp is not None:          # files without a clamp stay as they were
            out["conv_clamp"] = self.conv_clamp
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        return cls(resolution=int(d["resolution"]), style_dim=int(d["style_dim"]), n_mlp=int(d["n_mlp"]),
                   lr_mlp=float(d.get("lr_mlp", 0.01)),
                   blur_kernel=tuple(float(t) for t in d.get("blur_kernel", (1, 3, 3, 1))),
                   elastic_min=int(d.get("elastic_min", 0)),
                   conv_clamp=None if d.get("conv_clamp") is None else float(d["conv_clamp"]),
                   channels={int(k): int(v) for k, v in d["channels"].items()}, extra=dict(d.get("extra", {})))


# Named architectures (random weights unless a checkpoint is loaded), for benchmarks and training presets.
ARCHITECTURES = {
    "ffhq-1024": lambda: GeneratorConfig.from_multiplier(1024, 2, 512, extra={"note": "Anycost/StyleGAN2 config-f"}),
    "car-512": lambda: GeneratorConfig.from_multiplier(512, 2, 512, extra={"note": "Anycost car config-f"}),
    # the built-in demo: 64 px, sized for a 2-core CPU (~0.23 GMAC per image), z wide enough for
    # gan-face-generate's 100-dim latent plus free entries; previews at 64, 32 and 16 px (an 8 px face
    # is no preview of anything)
    "demo-64": lambda: GeneratorConfig(64, {4: 256, 8: 256, 16: 128, 32: 64, 64: 32}, style_dim=128, n_mlp=4,
                                       elastic_min=16,
                                       extra={"note": "built-in demo model size"}),
    "demo-128": lambda: GeneratorConfig(128, {4: 256, 8: 256, 16: 256, 32: 128, 64: 64, 128: 32},
                                        style_dim=256, n_mlp=4,
                                        extra={"note": "the first demo model's size (procedural faces)"}),
}


def architecture(name: str) -> GeneratorConfig:
    try:
        return ARCHITECTURES[name]()
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}") from None
