"""The models a daemon serves, behind one surface: calibrate, project, draw a preview or a final.

- `ServedAnycost`: an anycost generator. Previews are sub-generators (fewer channels, lower
  resolution) chosen by measured latency; the final is the full generator, resized to the size
  asked for.
- `ServedCreps`: a CREPS generator. A preview is the same continuous image drawn at a lower
  resolution (the largest that fits the budget); the final is drawn at exactly the size asked for,
  tile by tile with progress, so nothing is resampled.
"""
from __future__ import annotations

import hashlib
import statistics
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch

from anycost.core import measurements
from anycost.core.memory import give_back_freed_memory
from anycost.core.timing import cpu_name
from anycost.editing.directions import Direction, weights_hash
from anycost.editing.perceptual import Perceptual
from anycost.editing.projection import ProjectionOptions, ProjectionResult, project
from anycost.inference.conv_forms import FORMS_ID, FormChooser
from anycost.inference.fast import FastSynthesis, LastRender
from anycost.models.creps import CrepsAsAnycost
from anycost.protocol import messages as P
from anycost.service.calibration import (
    Slowdown,
    SubConfig,
    calibrate,
    measured_consistency,
    measured_preview_precision,
    pick,
    preview_configs,
    rank_configs,
)

if TYPE_CHECKING:
    from anycost.formats.checkpoints import Model

Progress = Callable[[int, int], None]
CREPS_PREVIEW_SIZES = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
FINAL_TILE = 256                 # samples per tile side of a CREPS final (bounds its memory)


@dataclass
class ServedModel:
    """What every served model offers the engine."""
    name: str
    model: Model
    directions: dict[str, Direction]
    ranked: list[SubConfig] | None = field(default=None)   # None until calibrated
    slowdown: Slowdown = field(default_factory=Slowdown)   # previews now against their calibration
    lowp_previews: bool = True                      # previews may compute layers in bfloat16/int8
    kind = "anycost"
    any_size = False                                # finals drawn at the requested size (no resampling)

    if TYPE_CHECKING:                               # what every kind implements (ServedAnycost, ServedCreps)
        def calibrate(self, state: Path, log=None) -> None: ...

        def project(self, target: torch.Tensor, perceptual: Perceptual, opts: ProjectionOptions,
                    progress=None, should_stop=None) -> ProjectionResult: ...

        def draw(self, wplus: torch.Tensor, config: SubConfig | None, size: tuple[int, int] | None,
                 supersample: int = 1, progress: Progress | None = None,
                 session: str | None = None) -> torch.Tensor: ...

    @property
    def g(self):
        return self.model.generator

    @property
    def resolution(self) -> int:
        return self.g.cfg.resolution

    @property
    def n_style(self) -> int:
        return self.g.n_style

    @property
    def has_encoder(self) -> bool:
        return self.model.encoder is not None

    def describe(self) -> P.ModelInfo:
        meta = self.model.metadata
        return P.ModelInfo(self.name, self.resolution, self.kind, self.g.cfg.style_dim, self.n_style,
                           bool(meta.get("untrained")), self.has_encoder, self.any_size,
                           (meta.get("w_space") or {}).get("model"), (meta.get("alignment") or {}).get("name"),
                           str(meta.get("licence") or ""),
                           tuple(P.DirectionInfo(**d.describe()) for d in self.directions.values()),
                           tuple(c.describe() for c in self.ranked) if self.ranked else None)

    def preview_config(self, budget_ms: float) -> SubConfig:
        assert self.ranked is not None                  # calibrated at start-up, before any edit
        return pick(self.ranked, budget_ms, self.slowdown.factor)

    def describe_config(self, config: SubConfig | None, size: tuple[int, int] | None) -> dict:
        """What drew an image (config None: the final render), as `edit`/`render` results say it."""
        if config is None:
            return {"ratio": 1.0, "resolution": self.resolution, "full": True, "precision": "fp32"}
        return {"ratio": config.ratio, "resolution": config.resolution,
                "full": (config.ratio, config.resolution) == (1.0, self.resolution),
                "precision": self.precision_used(config)}

    def precision_used(self, config: SubConfig) -> str:
        """The lowest precision a layer of this preview configuration computes in (PRECISIONS)."""
        return "fp32"


class ServedAnycost(ServedModel):
    """Draws with the batch-1 fast path on the CPU (`inference.fast`), the reference elsewhere.

    The fast path keeps the last render of recent sessions per configuration (`LastRender`), so an edit
    whose directions leave the first W+ rows alone does not recompute the levels that read them."""
    kind = "anycost"
    fast: FastSynthesis | None = None
    last_renders: OrderedDict | None = None
    # per preview configuration drawn below float32: what to draw with and what its layers then use
    preview_precision: dict[tuple[float, int], dict] = {}
    KEPT_RENDERS = 4                     # (session, configuration) pairs, each at most 64 MiB

    def calibrate(self, state: Path, log=None) -> None:
        if self.g.w_avg.device.type == "cpu":
            self.fast = FastSynthesis(self.g, FormChooser(state / "calibration"))
            self.last_renders = OrderedDict()
        meta = self.model.metadata
        configs = preview_configs(self.g, meta)
        figures = (meta.get("figures") or {}).get("consistency") or []
        if not figures and not meta.get("untrained"):     # none carried: measured now, once per model
            figures = measured_consistency(self.g, configs, state / "calibration", log=log)
        if self.fast is not None and self.lowp_previews and (self.fast.chooser.bf16 or self.fast.chooser.int8):
            measured = measured_preview_precision(self.g, self.fast, configs, state / "calibration", log=log)
            self.preview_precision = {c: m for c, m in measured.items() if m["precision"] != "fp32"}
        path = "reference" if self.fast is None else f"fast-{FORMS_ID}"   # new forms, new latencies
        if self.preview_precision:                  # the latencies hold for these precisions only
            served = sorted((r, k, m["precision"]) for (r, k), m in self.preview_precision.items())
            path += "-lowp-" + hashlib.sha1(repr(served).encode()).hexdigest()[:8]
        latency = calibrate(self.g, state / "calibration", log=log, synthesis=self.preview_synthesis,
                            path=path, configs=configs)
        self.ranked = rank_configs(self.g, latency, figures)
        if self.fast is not None:           # what is served, and the final
            self.fast.release([(r, k, self._precision(r, k)) for r, k in configs] + [(None, None, "fp32")])
            give_back_freed_memory()

    def precision_used(self, config: SubConfig) -> str:
        return self.preview_precision.get((config.ratio, config.resolution), {}).get("used", "fp32")

    def _precision(self, channels, target_res) -> str:
        return self.preview_precision.get((channels, target_res), {}).get("precision", "fp32")

    def preview_synthesis(self, wplus: torch.Tensor, channels=None, target_res=None) -> torch.Tensor:
        """What a preview of this configuration is drawn with (what its latency is calibrated on)."""
        return self.synthesis(wplus, channels=channels, target_res=target_res,
                              precision=self._precision(channels, target_res))

    def synthesis(self, wplus: torch.Tensor, channels=None, target_res=None,
                  session: str | None = None, precision: str = "fp32") -> torch.Tensor:
        if self.fast is None or wplus.shape[0] != 1:
            return self.g.synthesis(wplus, channels=channels, target_res=target_res)
        reuse = None
        if session is not None:
            assert self.last_renders is not None       # made with self.fast
            key = (session, channels, target_res)      # previews and refined previews alternate
            reuse = self.last_renders.pop(key, None) or LastRender()
            self.last_renders[key] = reuse                          # most recent last
            while len(self.last_renders) > self.KEPT_RENDERS:
                self.last_renders.popitem(last=False)
        return self.fast(wplus, channels=channels, target_res=target_res, reuse=reuse, precision=precision)

    def project(self, target: torch.Tensor, perceptual: Perceptual, opts: ProjectionOptions,
                progress=None, should_stop=None) -> ProjectionResult:
        return project(self.g, target, perceptual, opts, encoder=self.model.encoder, progress=progress,
                       should_stop=should_stop)

    def draw(self, wplus: torch.Tensor, config: SubConfig | None, size: tuple[int, int] | None,
             supersample: int = 1, progress: Progress | None = None, session: str | None = None) -> torch.Tensor:
        """The sub-generator's image (config None: the full generator); the caller resizes it to `size`."""
        if config is None:
            return self.synthesis(wplus, session=session)
        t0 = time.perf_counter()
        img = self.synthesis(wplus, channels=config.ratio, target_res=config.resolution, session=session,
                             precision=self._precision(config.ratio, config.resolution))
        last = self.last_renders.get((session, config.ratio, config.resolution)) if self.last_renders else None
        if last is None or last.reused == 0:        # a reused level's time is not the configuration's
            self.slowdown.observe(config, (time.perf_counter() - t0) * 1000)
        return img


class ServedCreps(ServedModel):
    kind = "creps"
    any_size = True

    def calibrate(self, state: Path, log=None, repeats: int = 2) -> None:
        """Median time of a square render at each preview size (cached per machine and model);
        bigger is better. Sizes past twice the native resolution are not offered as previews."""
        g = self.g
        threads, device = torch.get_num_threads(), g.w_avg.device.type
        key = f"creps-{weights_hash(g)}-{cpu_name().replace(' ', '_').replace('/', '_')}" \
              f"-{device}-{threads}t"
        cache = state / "calibration" / f"{key}.json"
        sizes = [s for s in CREPS_PREVIEW_SIZES if s <= 2 * self.resolution]
        latency: dict[int, float] | None
        try:
            latency = {int(k): float(v) for k, v in measurements.read(cache)["latency"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            latency = None                    # none, or damaged: measured again
        if latency is None or set(latency) != set(sizes):
            ws = g.map(torch.zeros(1, g.cfg.style_dim, device=g.w_avg.device))
            times: dict[int, list[float]] = {s: [] for s in sizes}
            with torch.inference_mode():
                g.render(ws, (sizes[0], sizes[0]))                       # warm-up
                for _ in range(repeats):
                    for s in sizes:
                        t0 = time.perf_counter()
                        g.render(ws, (s, s))
                        times[s].append((time.perf_counter() - t0) * 1000)
            latency = {s: statistics.median(v) for s, v in times.items()}
            measurements.write(cache, {"latency": {str(k): v for k, v in latency.items()}, "threads": threads})
            if log:
                log(f"calibrated {len(sizes)} CREPS preview sizes of {self.name}")
        # a bigger render is never really faster: a dip is timer noise, so latency is made non-decreasing
        ranked, slowest = [], 0.0
        for s in sorted(latency):
            slowest = max(slowest, latency[s])
            ranked.append(SubConfig(1.0, s, slowest, float(s)))
        self.ranked = ranked[::-1]

    def project(self, target: torch.Tensor, perceptual: Perceptual, opts: ProjectionOptions,
                progress=None, should_stop=None) -> ProjectionResult:
        """The encoder's guess (a W-space-sharing model's encoder speaks anycost rows), then
        optimization with the image kept faithful at half and quarter resolution too: the previews."""
        g, enc = self.g, self.model.encoder
        encoder = (lambda x: g.wplus_from_anycost(enc(x))) if enc is not None else None
        r = self.resolution
        configs = [(1.0, r // 2), (1.0, r // 4)] if r >= 32 else []
        # a CrepsAsAnycost stands in for a Generator (cfg, n_style, w_avg, synthesis); configs given
        return project(CrepsAsAnycost(g), target, perceptual, opts,  # type: ignore[arg-type]
                       encoder=encoder, progress=progress, should_stop=should_stop, configs=configs)

    def describe_config(self, config: SubConfig | None, size: tuple[int, int] | None) -> dict:
        w, h = size if size is not None else (self.resolution, self.resolution)
        if config is None:
            return {"ratio": 1.0, "resolution": max(w, h), "size": [w, h], "full": True}
        return {"ratio": 1.0, "resolution": config.resolution, "full": False}

    def draw(self, wplus: torch.Tensor, config: SubConfig | None, size: tuple[int, int] | None,
             supersample: int = 1, progress: Progress | None = None, session: str | None = None) -> torch.Tensor:
        """A preview: the image at `config.resolution` on its longer side, in `size`'s aspect. The
        final (config None): exactly `size` (w, h), tiled, with progress after each tile."""
        w, h = size if size is not None else (self.resolution, self.resolution)
        if config is None:        # a tile computes (tile x supersample)^2 samples: keep that near 256^2
            return self.g.render(wplus, (h, w), supersample=supersample, tile=FINAL_TILE // supersample,
                                 progress=progress)
        s = config.resolution
        ph, pw = (s, max(1, round(s * w / h))) if h >= w else (max(1, round(s * h / w)), s)
        t0 = time.perf_counter()
        img = self.g.render(wplus, (ph, pw))
        if ph == pw:                                # calibrated square; a narrower one is cheaper
            self.slowdown.observe(config, (time.perf_counter() - t0) * 1000)
        return img
