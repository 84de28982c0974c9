"""Sub-generator channel configurations: which first-k channels each layer keeps.

A configuration is a list with one width per channel entry of the generator (constant input,
conv1, then every conv, see `GeneratorConfig.n_channel_entries`). It is always passed to the
generator's forward call, never stored on the modules.
"""
from __future__ import annotations

from typing import Sequence, Union, cast

from anycost.core.defaults import TRAINED_RATIOS
from anycost.models.config import BASE_CHANNELS, GeneratorConfig

ChannelSpec = Union[None, float, Sequence[int]]


def uniform_channels(cfg: GeneratorConfig, ratio: float) -> list[int]:
    """Per-layer widths for a uniform channel ratio, by the official rule.

    The ratio applies to the unclamped base table, min(channel_max, int(base[res] * ratio * mult)),
    so layers that the full model clamps (the low resolutions) can stay at full width.
    """
    return layer_widths(cfg, [ratio] * cfg.n_channel_entries)


def layer_widths(cfg: GeneratorConfig, ratios: Sequence[float]) -> list[int]:
    """Per-layer widths for one ratio per channel entry (the official rule, layer by layer)."""
    if len(ratios) != cfg.n_channel_entries:
        raise ValueError(f"need {cfg.n_channel_entries} ratios, got {len(ratios)}")
    mult = cfg.channels[cfg.resolution] / BASE_CHANNELS[cfg.resolution]
    channel_max = max(cfg.channels.values())
    out = []
    for ratio, res, full in zip(ratios, cfg.layer_resolutions, cfg.full_channels, strict=True):
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"channel ratio must be in (0, 1], got {ratio:g}")
        c = full if ratio == 1.0 else min(full, channel_max, int(BASE_CHANNELS[res] * ratio * mult))
        if c < 1:
            raise ValueError(f"channel ratio {ratio:g} leaves no channel at {res} px for this model")
        out.append(c)
    return out


def resolve_channels(cfg: GeneratorConfig, spec: ChannelSpec) -> list[int] | None:
    """Turn a ratio, a per-layer list or None (full) into a validated per-layer width list."""
    if spec is None:
        return None
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return uniform_channels(cfg, float(spec))
    widths = [int(c) for c in cast("Sequence[int]", spec)]   # (a bool fails here, not being iterable)
    n = cfg.n_channel_entries
    if len(widths) != n:
        raise ValueError(f"a per-layer channel list needs {n} entries for this model, got {len(widths)}")
    for i, (c, full) in enumerate(zip(widths, cfg.full_channels, strict=True)):
        if not 1 <= c <= full:
            raise ValueError(f"channel entry {i} must be between 1 and {full}, got {c}")
    return widths


def describe(cfg: GeneratorConfig, widths: Sequence[int] | None) -> str:
    """Short human label: 'full', 'x0.5' for a known uniform ratio, else the list."""
    if widths is None or list(widths) == cfg.full_channels:
        return "x1"
    for r in TRAINED_RATIOS:
        if list(widths) == uniform_channels(cfg, r):
            return f"x{r:g}"
    return ",".join(str(c) for c in widths)
