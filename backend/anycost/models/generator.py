"""The Anycost generator: StyleGAN2 with elastic resolution (early exit) and elastic channels."""
from __future__ import annotations

import random
from typing import Literal, Optional, Sequence, Union, overload

import torch
from torch import nn

from anycost.models.channels import ChannelSpec, resolve_channels
from anycost.models.config import GeneratorConfig
from anycost.models.layers import ConstantInput, EqualLinear, PixelNorm, StyledConv, ToRGB

# "const" | "random" | "zero" | one tensor (or None: no noise) per layer
NoiseSpec = Union[str, Sequence[Optional[torch.Tensor]]]


class Generator(nn.Module):
    """StyleGAN2 generator whose sub-networks (first-k channels, lower resolutions) are usable alone.

    Parameter names follow the official Anycost GAN checkpoints (`style.*`, `input.input`, `conv1.*`,
    `to_rgb1.*`, `convs.*`, `to_rgbs.*`, `noises.noise_*`), plus a `w_avg` buffer for truncation.
    """

    w_avg: torch.Tensor                              # buffer

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        ch, sd, bk, clamp = cfg.channels, cfg.style_dim, cfg.blur_kernel, cfg.conv_clamp
        self.style = nn.Sequential(PixelNorm(), *[
            EqualLinear(sd, sd, lr_mul=cfg.lr_mlp, activation=True) for _ in range(cfg.n_mlp)])
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], 3, sd, blur_kernel=bk, clamp=clamp)
        self.to_rgb1 = ToRGB(ch[4], sd, upsample=False, blur_kernel=bk, clamp=clamp)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_ch = ch[4]
        for res in cfg.levels[1:]:
            out_ch = ch[res]
            self.convs.append(StyledConv(in_ch, out_ch, 3, sd, upsample=True, blur_kernel=bk, clamp=clamp))
            self.convs.append(StyledConv(out_ch, out_ch, 3, sd, blur_kernel=bk, clamp=clamp))
            self.to_rgbs.append(ToRGB(out_ch, sd, blur_kernel=bk, clamp=clamp))
            in_ch = out_ch
        self.noises = nn.Module()
        for i in range(cfg.num_layers):
            size = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, size, size))
        self.register_buffer("w_avg", torch.zeros(sd))

    # ------------------------------------------------------------------ latents

    @property
    def n_style(self) -> int:
        return self.cfg.n_style

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z [..., style_dim] -> w [..., style_dim]."""
        shape = z.shape
        return self.style(z.reshape(-1, shape[-1])).reshape(shape)

    @torch.no_grad()
    def update_w_avg(self, n: int = 10000, seed: int = 0) -> None:
        """Set the truncation centre to the mean w of `n` seeded samples (official files store none)."""
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.cfg.style_dim, generator=gen).to(self.w_avg.device)
        self.w_avg.copy_(self.mapping(z).mean(0))

    def latent_to_wplus(
        self,
        latent: torch.Tensor,                 # [N, D] or [N, L, D] with L in {1, 2, n_style}
        space: str = "z",                     # "z" = apply the mapping network; "w" = already in W/W+
        truncation: float = 1.0,              # psi; 1 = none
        truncation_latent: torch.Tensor | None = None,   # centre [D]; None = the stored w_avg
        inject_index: int | None = None,      # style-mixing crossover for L == 2; None = random
    ) -> torch.Tensor:
        """Any accepted latent form -> W+ [N, n_style, D]."""
        d, n_style = self.cfg.style_dim, self.n_style
        if latent.ndim == 2:
            latent = latent[:, None]
        if latent.ndim != 3 or latent.shape[2] != d:
            raise ValueError(f"latent must be [N, {d}] or [N, L, {d}], got {list(latent.shape)}")
        if latent.shape[1] not in (1, 2, n_style):
            raise ValueError(f"latent rows must be 1, 2 (mixing) or {n_style} (W+), got {latent.shape[1]}")
        if space == "z":
            w = self.mapping(latent)
        elif space == "w":
            w = latent
        else:
            raise ValueError(f"latent space must be 'z' or 'w', got {space!r}")
        if truncation != 1.0:
            t = self.w_avg if truncation_latent is None else truncation_latent
            w = t + truncation * (w - t)
        if w.shape[1] == 1:
            return w.expand(-1, n_style, -1)
        if w.shape[1] == 2:
            k = random.randint(1, n_style - 1) if inject_index is None else inject_index
            if not 0 <= k <= n_style:
                raise ValueError(f"inject_index must be in 0..{n_style}, got {k}")
            return torch.cat([w[:, :1].expand(-1, k, -1), w[:, 1:].expand(-1, n_style - k, -1)], dim=1)
        return w

    # ---------------------------------------------------------------- synthesis

    def resolve_target_res(self, target_res: int | None) -> int:
        if target_res is None:
            return self.cfg.resolution
        if target_res not in self.cfg.levels:
            raise ValueError(f"this model renders {self.cfg.levels[0]}..{self.cfg.resolution} px in powers "
                             f"of two (trained sub-resolutions: {self.cfg.elastic_resolutions}), got {target_res}")
        return target_res

    def noise_tensors(self, noise: NoiseSpec, batch: int, generator: torch.Generator | None = None,
                      device=None, dtype=torch.float32) -> Sequence[torch.Tensor | None]:
        bufs = [getattr(self.noises, f"noise_{i}") for i in range(self.cfg.num_layers)]
        if isinstance(noise, str):
            if noise == "const":
                return bufs
            if noise == "zero":
                return [None] * len(bufs)
            if noise == "random":
                return [torch.randn(batch, 1, *b.shape[2:], generator=generator, dtype=dtype).to(device or b.device)
                        for b in bufs]
            raise ValueError(f"noise must be 'const', 'random', 'zero' or a list of tensors, got {noise!r}")
        noise = list(noise)
        if len(noise) != len(bufs):
            raise ValueError(f"explicit noise needs {len(bufs)} tensors, got {len(noise)}")
        return noise

    @overload
    def synthesis(self, wplus: torch.Tensor, noise: NoiseSpec = ..., channels: ChannelSpec = ...,
                  target_res: int | None = ..., return_rgbs: Literal[False] = ..., impl: str = ...,
                  generator: torch.Generator | None = ...) -> torch.Tensor: ...

    @overload
    def synthesis(self, wplus: torch.Tensor, noise: NoiseSpec = ..., channels: ChannelSpec = ...,
                  target_res: int | None = ..., *, return_rgbs: Literal[True], impl: str = ...,
                  generator: torch.Generator | None = ...) -> tuple[torch.Tensor, list[torch.Tensor]]: ...

    @overload
    def synthesis(self, wplus: torch.Tensor, noise: NoiseSpec = ..., channels: ChannelSpec = ...,
                  target_res: int | None = ..., return_rgbs: bool = ..., impl: str = ...,
                  generator: torch.Generator | None = ...
                  ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]: ...

    def synthesis(
        self,
        wplus: torch.Tensor,                  # [N, n_style, style_dim]
        noise: NoiseSpec = "const",
        channels: ChannelSpec = None,         # None = full; a ratio; or one width per channel entry
        target_res: int | None = None,        # stop after this level; None = full resolution
        return_rgbs: bool = False,            # also return the skip image of every level run
        impl: str = "auto",                   # modulated conv form, see ops.modulated_conv2d
        generator: torch.Generator | None = None,   # RNG for noise="random"
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        n = wplus.shape[0]
        assert wplus.shape[1:] == (self.n_style, self.cfg.style_dim), (wplus.shape, self.n_style)
        widths: Sequence[int | None] = resolve_channels(self.cfg, channels) or [None] * self.cfg.n_channel_entries
        target = self.resolve_target_res(target_res)
        noises = self.noise_tensors(noise, n, generator, device=wplus.device)

        x = self.input(n, widths[0])
        x = self.conv1(x, wplus[:, 0], noises[0], widths[1], impl=impl)
        skip = self.to_rgb1(x, wplus[:, 1], impl=impl)
        rgbs = [skip]
        for j, res in enumerate(self.cfg.levels[1:]):
            if res > target:
                break  # elastic resolution: the blocks above are never run
            i = 2 * j + 1
            x = self.convs[2 * j](x, wplus[:, i], noises[i], widths[i + 1], impl=impl)
            x = self.convs[2 * j + 1](x, wplus[:, i + 1], noises[i + 1], widths[i + 2], impl=impl)
            skip = self.to_rgbs[j](x, wplus[:, i + 2], skip, impl=impl)
            rgbs.append(skip)
        return (skip, rgbs) if return_rgbs else skip

    def forward(
        self,
        latent: torch.Tensor,
        space: str = "z",
        truncation: float = 1.0,
        truncation_latent: torch.Tensor | None = None,
        inject_index: int | None = None,
        **synthesis_kwargs,
    ):
        """latent -> image [N, 3, R, R] in about [-1, 1]; keyword arguments as in `synthesis`."""
        wplus = self.latent_to_wplus(latent, space, truncation, truncation_latent, inject_index)
        return self.synthesis(wplus, **synthesis_kwargs)
