"""CREPS (Nguyen et al., CVPR 2023): a generator with no spatial convolutions, rendered at any size.

Every layer after the coordinates is pointwise. Most of the network runs on two "thick lines": a
row encoding (a function of y) and a column encoding (a function of x), each `rank` wide. After
each block a rank-R outer product of the accumulated lines gives a per-pixel feature, which small
per-pixel MLPs refine. The image is therefore one continuous function of (x, y) on the unit
square: any size, aspect, crop or tile is point-sampling it elsewhere. Written from the
architecture notes in shared/research/creps.md (parameter names follow the official release).

Rendering (`CrepsGenerator.render`) computes the line branch once per (ws, size) and the pixel
branch tile by tile, so a region is bit-identical to the same crop of the full render and memory
stays bounded for large outputs.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from anycost.models.layers import EqualLinear, PixelNorm

SQRT2 = math.sqrt(2.0)
SQRT_HALF = math.sqrt(0.5)


@dataclass(frozen=True)
class CrepsConfig:
    resolution: int                  # training resolution: blocks b4..b{resolution}, num_ws = 2*log2(res) - 1
    style_dim: int = 512             # z and w width
    n_mlp: int = 8                   # mapping layers
    channel_base: int = 65536        # line widths min(channel_base / r, channel_max) ("--cfg=creps")
    channel_max: int = 1024
    rank: int = 8                    # R: width of the row and column lines
    pixel_dim: int = 32              # per-pixel feature width (ToRes output)
    bandwidth: float = 10.0          # std of the fixed Fourier frequencies, cycles per image side
    decoder_hidden: tuple = (64, 128, 64)   # per-pixel MLP pixel_dim -> ... -> pixel_dim
    head_widths: tuple = (128, 64)   # the two modulated per-pixel output blocks
    clamp: float = 256.0             # activations clamped to +-clamp, as upstream
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        r = self.resolution
        if r < 8 or r & (r - 1):
            raise ValueError(f"resolution must be a power of two >= 8, got {r}")
        if self.rank < 1 or self.pixel_dim < 1:
            raise ValueError("rank and pixel_dim must be positive")

    @property
    def levels(self) -> list[int]:
        return [2 ** i for i in range(2, int(math.log2(self.resolution)) + 1)]

    def channels(self, r: int) -> int:
        return min(self.channel_base // r, self.channel_max)

    @property
    def num_ws(self) -> int:
        return 2 * int(math.log2(self.resolution)) - 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["decoder_hidden"], d["head_widths"] = list(self.decoder_hidden), list(self.head_widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CrepsConfig":
        d = dict(d)
        d["decoder_hidden"], d["head_widths"] = tuple(d["decoder_hidden"]), tuple(d["head_widths"])
        return cls(**d)


CREPS_ARCHITECTURES = {
    # the published widths ("--cfg=creps": channel_base 65536, channel_max 1024)
    "creps-ffhq-256": lambda: CrepsConfig(256),
    "creps-ffhq-512": lambda: CrepsConfig(512),
    "creps-ffhq-1024": lambda: CrepsConfig(1024),
    # the anycost demo model's W space (style 128, 4 mapping layers) at 64 px; the per-pixel
    # layers are halved from the published (64, 128, 64) / (128, 64): they dominate CPU time
    "creps-demo": lambda: CrepsConfig(64, style_dim=128, n_mlp=4, channel_base=8192, channel_max=256,
                                      decoder_hidden=(32, 64, 32), head_widths=(64, 32),
                                      extra={"note": "built-in CREPS demo size"}),
}


def creps_architecture(name: str) -> CrepsConfig:
    try:
        return CREPS_ARCHITECTURES[name]()
    except KeyError:
        raise ValueError(f"unknown CREPS architecture {name!r}; known: {', '.join(CREPS_ARCHITECTURES)}") from None


# ------------------------------------------------------------------------------------------ layers

def _pointwise(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x [B, I, ...] times weight [B, O, I] (or [O, I]) over the channel axis -> [B, O, ...]."""
    b, i = x.shape[:2]
    flat = x.reshape(b, i, -1)
    out = torch.matmul(weight, flat)
    return out.reshape(b, out.shape[1], *x.shape[2:])


def _act(x: torch.Tensor, bias: torch.Tensor, clamp: float, activate: bool) -> torch.Tensor:
    x = x + bias.reshape(1, -1, *([1] * (x.ndim - 2)))
    if activate:
        x = F.leaky_relu(x, 0.2) * SQRT2
    return x.clamp(-clamp, clamp)


class ModFC(nn.Module):
    """Modulated pointwise layer (StyleGAN2's modulated conv with a 1x1 kernel). `to_res`: the
    ToRes form, styles scaled by 1/sqrt(in), no demodulation, no activation."""

    def __init__(self, in_dim: int, out_dim: int, style_dim: int, clamp: float, to_res: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.affine = EqualLinear(style_dim, in_dim, bias_init=1.0)
        self.clamp, self.to_res = clamp, to_res

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.affine(w)                                        # [B, I]
        if self.to_res:
            s = s / math.sqrt(self.weight.shape[1])
        wb = self.weight[None] * s[:, None, :]                    # [B, O, I]
        if not self.to_res:
            wb = wb * torch.rsqrt(wb.square().sum(2, keepdim=True) + 1e-8)
        return _act(_pointwise(x, wb), self.bias, self.clamp, activate=not self.to_res)


class PixelMLP(nn.ModuleList):
    """Unmodulated per-pixel MLP pixel_dim -> hidden... -> pixel_dim, every layer with lrelu
    (a list, so its keys are upstream's `decoder_{r}.{i}.*`)."""

    def __init__(self, dims: list[int]):
        super().__init__(EqualLinear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for fc in cast("list[EqualLinear]", self):  # upstream's plain FC layers: no clamp
            x = _act(_pointwise(x, fc.weight * fc.scale), fc.bias * fc.lr_mul, math.inf, activate=True)
        return x


class FourierLines(nn.Module):
    """The coordinates' entry (upstream `b4.input`): fixed random frequencies, sin and cos, then a
    per-line modulation; rows use slots 0..R-1 of the modulation, columns R..2R-1."""

    freqs: torch.Tensor                              # buffer

    def __init__(self, cfg: CrepsConfig, channels: int):
        super().__init__()
        if channels % 2:
            raise ValueError("the input width must be even (sin and cos halves)")
        self.channels, self.rank = channels, cfg.rank
        self.register_buffer("freqs", torch.randn(1, channels // 2 * cfg.rank) * cfg.bandwidth)
        self.weight = nn.Parameter(torch.randn(1, channels, 1, 2 * cfg.rank))
        self.affine = EqualLinear(cfg.style_dim, channels * 2 * cfg.rank, bias_init=1.0)

    def forward(self, t: torch.Tensor, axis: int, w: torch.Tensor) -> torch.Tensor:
        """t [L] coordinates in the model frame, axis 0 rows / 1 columns, w [B, D] -> [B, C, L, R]."""
        c, r = self.channels, self.rank
        phase = 2 * math.pi * t.reshape(-1, 1).to(self.freqs) * self.freqs          # [L, C/2*R]
        phase = phase.reshape(-1, c // 2, r).permute(1, 0, 2)                        # [C/2, L, R]
        f = torch.cat([torch.sin(phase), torch.cos(phase)], dim=0)                   # [C, L, R]
        m = self.weight.reshape(1, c, 2 * r) * self.affine(w).reshape(-1, c, 2 * r)  # [B, C, 2R]
        m = m[..., axis * r:(axis + 1) * r]
        return f[None] * m[:, :, None, :] / math.sqrt(c)


class LineBlock(nn.Module):
    """Block b{r} of the line branch: fc0, fc1 on the lines, and ToRes to the pixel feature width."""

    def __init__(self, in_dim: int, out_dim: int, cfg: CrepsConfig):
        super().__init__()
        self.fc0 = ModFC(in_dim, out_dim, cfg.style_dim, cfg.clamp)
        self.fc1 = ModFC(out_dim, out_dim, cfg.style_dim, cfg.clamp)
        self.tores = ModFC(out_dim, cfg.pixel_dim, cfg.style_dim, cfg.clamp, to_res=True)


class MappingNetwork(nn.Module):
    """StyleGAN2's mapping network, with upstream's names (`fc{i}`, `w_avg` for truncation)."""

    w_avg: torch.Tensor                              # buffer

    def __init__(self, style_dim: int, n_mlp: int):
        super().__init__()
        self.norm = PixelNorm()
        self.n_mlp = n_mlp
        for i in range(n_mlp):
            setattr(self, f"fc{i}", EqualLinear(style_dim, style_dim, lr_mul=0.01, activation=True))
        self.register_buffer("w_avg", torch.zeros(style_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.norm(z)
        for i in range(self.n_mlp):
            x = getattr(self, f"fc{i}")(x)
        return x


class HeadBlock(nn.Module):
    """A modulated per-pixel output block: fc0, fc1, and ToRes to RGB (added to the image)."""

    def __init__(self, in_dim: int, out_dim: int, cfg: CrepsConfig):
        super().__init__()
        self.fc0 = ModFC(in_dim, out_dim, cfg.style_dim, cfg.clamp)
        self.fc1 = ModFC(out_dim, out_dim, cfg.style_dim, cfg.clamp)
        self.tores = ModFC(out_dim, 3, cfg.style_dim, cfg.clamp, to_res=True)

    def forward(self, h: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc1(self.fc0(h, w), w)
        return h, self.tores(h, w)


# --------------------------------------------------------------------------------------- generator

@dataclass
class LineCache:
    """The line branch of one (ws, sample grid): per block, the accumulated row and column lines
    scaled for the outer product (A [B, P, H, R], Bc [B, P, W, R]). Small: reused by every tile."""
    rows: list[torch.Tensor]
    cols: list[torch.Tensor]
    height: int
    width: int


def sample_grid(n: int, native: int) -> torch.Tensor:
    """n pixel-centre coordinates spanning the image in the model frame. The training grid samples
    linspace(0, 1, native); this one covers pixel extents, so at n == native it is that grid, and a
    grid s times finer averages (box filter) onto it: previews agree with downsampled finals."""
    h = 0.5 / (native - 1)
    return -h + (torch.arange(n, dtype=torch.float64) + 0.5) * (1 + 2 * h) / n


class CrepsGenerator(nn.Module):
    """CREPS generator: mapping network, Fourier lines, line blocks b8..b{res}, per-pixel decoders
    and the modulated output head. `render()` draws any H x W (or a region of it) from W+.

    Parameter names are the official release's (`mapping.fc{i}`, `mapping.w_avg`,
    `synthesis.b4.input`, `synthesis.b{r}.{fc0,fc1,tores}`, `synthesis.decoder_{r}.{i}`,
    `synthesis.decoder_last`, `synthesis.decoder_img`, `synthesis.block{0,1}`), minus the weights
    upstream builds but never runs (`b4.tores`, `decoder_8`) and the `coords` buffer.
    """

    def __init__(self, cfg: CrepsConfig):
        super().__init__()
        self.cfg = cfg
        sd = cfg.style_dim
        self.mapping = MappingNetwork(sd, cfg.n_mlp)
        c4 = cfg.channels(4)
        self.synthesis = syn = nn.Module()
        syn.b4 = nn.Module()
        syn.b4.input = FourierLines(cfg, c4)
        syn.b4.fc1 = ModFC(c4, c4, sd, cfg.clamp)
        dims = [cfg.pixel_dim, *cfg.decoder_hidden, cfg.pixel_dim]
        for r in cfg.levels[1:]:
            setattr(syn, f"b{r}", LineBlock(cfg.channels(r // 2), cfg.channels(r), cfg))
            if r > 8:      # the first block's feature has no decoder (upstream's decoder_8 never runs)
                setattr(syn, f"decoder_{r}", PixelMLP(dims))
        syn.decoder_last = PixelMLP(dims)
        syn.decoder_img = EqualLinear(cfg.pixel_dim, 3)
        widths = [cfg.pixel_dim, *cfg.head_widths]
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            setattr(syn, f"block{i}", HeadBlock(a, b, cfg))
        self.blocks = [getattr(syn, f"b{r}") for r in cfg.levels[1:]]          # views, in order
        self.decoders = [getattr(syn, f"decoder_{r}") for r in cfg.levels[2:]]
        self.head = [getattr(syn, f"block{i}") for i in range(len(widths) - 1)]

    # ------------------------------------------------------------------ latents

    def map(self, z: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        """z [N, D] -> W+ [N, num_ws, D] (CREPS trains without style mixing: one w everywhere)."""
        assert z.ndim == 2 and z.shape[1] == self.cfg.style_dim, z.shape
        w = self.mapping(z)
        if truncation != 1.0:
            w_avg = self.mapping.w_avg
            w = w_avg + truncation * (w - w_avg)
        return w[:, None].expand(-1, self.cfg.num_ws, -1)

    def wplus_from_anycost(self, wplus: torch.Tensor) -> torch.Tensor:
        """W+ in this model's rows from an anycost generator's W+ of the same resolution (one row
        fewer: per level, the same conv, conv, toRGB styles; the output head takes the last)."""
        n = self.cfg.num_ws
        if wplus.ndim == 3 and wplus.shape[1] == n:
            return wplus
        assert wplus.ndim == 3 and wplus.shape[1] == n - 1, (wplus.shape, n)
        return torch.cat([wplus, wplus[:, -1:]], dim=1)

    @torch.no_grad()
    def update_w_avg(self, n: int = 10000, seed: int = 0) -> None:
        z = torch.randn(n, self.cfg.style_dim, generator=torch.Generator().manual_seed(seed))
        self.mapping.w_avg.copy_(self.mapping(z.to(self.mapping.w_avg.device)).mean(0))

    # ------------------------------------------------------------------ what editing shares with
    # anycost.models.Generator (W+ rows, mean w)

    @property
    def n_style(self) -> int:
        return self.cfg.num_ws

    @property
    def w_avg(self) -> torch.Tensor:
        return self.mapping.w_avg

    # ------------------------------------------------------------------ line branch

    def prepare(self, ws: torch.Tensor, height: int, width: int, chunk: int = 2048) -> LineCache:
        """The line branch for an H x W sample grid (pixel-extent, see `sample_grid`); pointwise
        over line positions, so it runs in chunks of `chunk` positions to bound memory."""
        cfg = self.cfg
        assert ws.ndim == 3 and ws.shape[1:] == (cfg.num_ws, cfg.style_dim), ws.shape
        ys, xs = sample_grid(height, cfg.resolution), sample_grid(width, cfg.resolution)
        per_block: list[list[tuple[int, torch.Tensor]]] = [[] for _ in self.blocks]
        for axis, coords in ((0, ys), (1, xs)):
            for start in range(0, len(coords), chunk):
                for k, y in enumerate(self._lines(coords[start:start + chunk], axis, ws)):
                    per_block[k].append((axis, y))
        rows, cols = [], []
        for outs in per_block:
            r = torch.cat([y for a, y in outs if a == 0], dim=2)
            c = torch.cat([y for a, y in outs if a == 1], dim=2)
            rows.append(r)
            cols.append(c)
        # the running sum over blocks (the "biline"), scaled by sqrt(1/2) for the outer product
        acc_r, acc_c, out_r, out_c = None, None, [], []
        for r, c in zip(rows, cols, strict=True):
            acc_r = r if acc_r is None else acc_r + r
            acc_c = c if acc_c is None else acc_c + c
            out_r.append(acc_r * SQRT_HALF)
            out_c.append(acc_c * SQRT_HALF)
        return LineCache(out_r, out_c, height, width)

    def _lines(self, t: torch.Tensor, axis: int, ws: torch.Tensor) -> list[torch.Tensor]:
        b4: Any = self.synthesis.b4                  # submodules set by name (upstream's keys)
        x = b4.fc1(b4.input(t.to(ws.device), axis, ws[:, 0]), ws[:, 1])
        outs = []
        for k, blk in enumerate(self.blocks, 1):
            x = blk.fc1(blk.fc0(x, ws[:, 2 * k - 1]), ws[:, 2 * k])
            outs.append(blk.tores(x, ws[:, 2 * k + 1]))                 # [B, P, L, R]
        return outs

    # ------------------------------------------------------------------ pixel branch

    def pixels(self, cache: LineCache, ws: torch.Tensor, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        """The image on sample rows y0:y1 and columns x0:x1 of the cached grid -> [B, 3, h, w]."""
        syn: Any = self.synthesis                    # submodules set by name (upstream's keys)
        feat = None
        for k, (a, b) in enumerate(zip(cache.rows, cache.cols, strict=True)):
            p = torch.einsum("bchr,bcwr->bchw", a[:, :, y0:y1], b[:, :, x0:x1])
            feat = p if k == 0 else self.decoders[k - 1](feat) + p
        feat = syn.decoder_last(feat)
        img = _pointwise(feat, syn.decoder_img.weight * syn.decoder_img.scale)
        img = img + (syn.decoder_img.bias * syn.decoder_img.lr_mul).reshape(1, -1, 1, 1)
        h, w_last = feat, ws[:, -1]
        for blk in self.head:
            h, rgb = blk(h, w_last)
            img = img + rgb
        return img

    def render(
        self,
        ws: torch.Tensor,                          # W+ [B, num_ws, style_dim]
        size: tuple[int, int],                     # (height, width) of the whole image, any aspect
        region: tuple[int, int, int, int] | None = None,   # (x, y, w, h) in pixels of `size`
        supersample: int = 1,                      # s x s samples per pixel, box-averaged
        tile: int = 256,                           # output pixels per tile side (bounds memory)
        cache: LineCache | None = None,            # a `prepare()` result for this ws and grid
        progress=None,                             # called with (tiles done, tiles) after each tile
    ) -> torch.Tensor:
        """The image (or `region` of it) -> [B, 3, h, w], roughly in [-1, 1]. A region is
        bit-identical to the same crop of the full render with the same `tile`."""
        height, width = size
        if height < 1 or width < 1 or supersample < 1 or tile < 1:
            raise ValueError(f"size, supersample and tile must be positive, got {size}, {supersample}, {tile}")
        x, y, w, h = region if region is not None else (0, 0, width, height)
        if w < 1 or h < 1 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise ValueError(f"region {region} lies outside the {width}x{height} image")
        s = supersample
        if cache is None:
            cache = self.prepare(ws, height * s, width * s)
        elif (cache.height, cache.width) != (height * s, width * s):
            raise ValueError("the line cache was prepared for another size or supersampling")
        out = torch.empty(ws.shape[0], 3, h, w, device=ws.device)
        # tiles on a fixed grid of the whole image: every pixel is always computed inside the same
        # tile (same shapes, same arithmetic), so a region is bit-identical to the full render's crop
        spans = [(ty, tx) for ty in range(y // tile * tile, y + h, tile) for tx in range(x // tile * tile, x + w, tile)]
        for i, (ty, tx) in enumerate(spans):
            th, tw = min(tile, height - ty), min(tile, width - tx)
            img = self.pixels(cache, ws, ty * s, (ty + th) * s, tx * s, (tx + tw) * s)
            if s > 1:
                img = F.avg_pool2d(img, s)
            cy0, cy1 = max(ty, y), min(ty + th, y + h)           # the part of the tile in the region
            cx0, cx1 = max(tx, x), min(tx + tw, x + w)
            out[:, :, cy0 - y:cy1 - y, cx0 - x:cx1 - x] = img[:, :, cy0 - ty:cy1 - ty, cx0 - tx:cx1 - tx]
            if progress:
                progress(i + 1, len(spans))
        return out


class CrepsAsAnycost:
    """A CREPS generator seen the way projection sees an anycost generator: `synthesis(wplus,
    channels, target_res)` draws the square image (CREPS has no channel sub-networks, so only
    channels 1.0, at any resolution). A view, because `synthesis` is the generator's submodule."""

    def __init__(self, g: CrepsGenerator):
        self.g, self.cfg = g, g.cfg

    @property
    def n_style(self) -> int:
        return self.g.n_style

    @property
    def w_avg(self) -> torch.Tensor:
        return self.g.w_avg

    def synthesis(self, wplus: torch.Tensor, channels: float = 1.0, target_res: int | None = None) -> torch.Tensor:
        if channels != 1.0:
            raise ValueError("a CREPS generator has no channel sub-networks (channels must be 1.0)")
        r = target_res or self.cfg.resolution
        return self.g.render(wplus, (r, r), tile=r)
