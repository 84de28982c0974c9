"""Perceptual distance for projection: LPIPS when its backbone weights are on disk, else a fallback.

The `lpips` package ships its own linear heads, but its AlexNet/VGG backbone comes from
torchvision's download cache. Nothing is downloaded here: when the backbone file is absent the
distance falls back to a Laplacian-pyramid L1 (Bojanowski et al., "Optimizing the Latent Space of
Generative Networks"), which weighs the band-pass structure of the image at every scale, and a
warning says so (the daemon reports it in `hello`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
MIN_LPIPS_SIZE = 64      # AlexNet's strided stem needs some pixels; smaller images are upsampled
MAX_LPIPS_SIZE = 256     # larger images are compared at 256 px, as the official tools do


@dataclass
class Perceptual:
    name: str                                           # "lpips-alex" | "laplacian-l1"
    distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]   # [N,3,H,W] x2 in [-1,1] -> [N]
    warning: str | None = None


def backbone_path(net: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / BACKBONE_FILES[net]


def make_perceptual(net: str = "alex", device: str = "cpu") -> Perceptual:
    path = backbone_path(net)
    if path.is_file():
        try:
            import lpips
            model = lpips.LPIPS(net=net, verbose=False).to(device).eval()
            for p in model.parameters():
                p.requires_grad_(False)
            return Perceptual(f"lpips-{net}", lambda a, b: model(_lpips_size(a), _lpips_size(b)).flatten())
        except Exception as e:  # a broken or partial file: say so, keep working
            reason = f"LPIPS could not be built from {path} ({e})"
    else:
        reason = f"LPIPS backbone weights not found at {path} (offline)"
    warning = f"{reason}; the perceptual distance falls back to a Laplacian-pyramid L1 instead of LPIPS"
    log.warning(warning)
    return Perceptual("laplacian-l1", laplacian_l1, warning)


def _lpips_size(x: torch.Tensor) -> torch.Tensor:
    s = x.shape[-1]
    if s < MIN_LPIPS_SIZE:
        return F.interpolate(x, size=MIN_LPIPS_SIZE, mode="bilinear", align_corners=False)
    if s > MAX_LPIPS_SIZE:
        return F.interpolate(x, size=MAX_LPIPS_SIZE, mode="area")
    return x


def laplacian_l1(a: torch.Tensor, b: torch.Tensor, min_size: int = 4) -> torch.Tensor:
    """sum_j 4^-j * mean |L_j(a) - L_j(b)| over the bands of a Laplacian pyramid; [N]."""
    total = a.new_zeros(a.shape[0])
    weight = 1.0
    while True:
        if a.shape[-1] <= min_size:
            return total + weight * (a - b).abs().mean(dim=(1, 2, 3))
        a_low, b_low = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        a_band = a - F.interpolate(a_low, scale_factor=2, mode="nearest")
        b_band = b - F.interpolate(b_low, scale_factor=2, mode="nearest")
        total = total + weight * (a_band - b_band).abs().mean(dim=(1, 2, 3))
        a, b, weight = a_low, b_low, weight / 4
