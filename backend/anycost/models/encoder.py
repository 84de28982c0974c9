"""Image -> W+ encoder: a ResNet trunk, global pooling, one linear layer to n_style x style_dim.

Module names follow torchvision's ResNet (`conv1`, `bn1`, `layer1..4`, `fc`) plus a `mean_latent`
buffer, the layout of the official Anycost GAN ResNet-50 encoder, so its checkpoints load as they
are; our own encoders use the same class with narrower widths and basic blocks.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck


@dataclass(frozen=True)
class EncoderConfig:
    n_style: int                                  # W+ rows
    style_dim: int                                # W width
    input_size: int = 256                         # images are resized to this before encoding
    widths: tuple[int, ...] = (64, 128, 256, 512) # base width of each ResNet stage
    blocks: tuple[int, ...] = (3, 4, 6, 3)        # residual blocks per stage
    bottleneck: bool = True                       # Bottleneck (x4 expansion) or BasicBlock
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def official(cls, n_style: int = 18, style_dim: int = 512) -> "EncoderConfig":
        """The official ResNet-50 encoder (256 x 256 inputs)."""
        return cls(n_style, style_dim, 256, (64, 128, 256, 512), (3, 4, 6, 3), True)

    @classmethod
    def small(cls, n_style: int, style_dim: int, input_size: int) -> "EncoderConfig":
        """A ResNet-10-like trunk for small models (a few MB)."""
        return cls(n_style, style_dim, input_size, (32, 64, 128, 256), (1, 1, 1, 1), False)

    def to_dict(self) -> dict:
        return {"n_style": self.n_style, "style_dim": self.style_dim, "input_size": self.input_size,
                "widths": list(self.widths), "blocks": list(self.blocks), "bottleneck": self.bottleneck}

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderConfig":
        return cls(int(d["n_style"]), int(d["style_dim"]), int(d["input_size"]), tuple(d["widths"]),
                   tuple(d["blocks"]), bool(d["bottleneck"]))


class Encoder(nn.Module):
    mean_latent: torch.Tensor                        # buffer

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        block = Bottleneck if cfg.bottleneck else BasicBlock
        self.conv1 = nn.Conv2d(3, cfg.widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(cfg.widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = cfg.widths[0]
        for i, (width, n) in enumerate(zip(cfg.widths, cfg.blocks, strict=False)):
            stride = 1 if i == 0 else 2
            layers = []
            for j in range(n):
                downsample = None
                if j == 0 and (stride != 1 or inplanes != width * block.expansion):
                    downsample = nn.Sequential(
                        nn.Conv2d(inplanes, width * block.expansion, 1, stride=stride, bias=False),
                        nn.BatchNorm2d(width * block.expansion))
                layers.append(block(inplanes, width, stride if j == 0 else 1, downsample))
                inplanes = width * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, cfg.n_style * cfg.style_dim)
        self.register_buffer("mean_latent", torch.zeros(cfg.style_dim))
        nn.init.zeros_(self.fc.weight)        # a new encoder starts at the mean latent
        nn.init.zeros_(self.fc.bias)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """img [N, 3, H, W] in [-1, 1] (resized to input_size) -> W+ [N, n_style, style_dim]."""
        s = self.cfg.input_size
        if img.shape[-2:] != (s, s):
            img = F.interpolate(img, size=(s, s), mode="bilinear", align_corners=True)
        x = self.maxpool(self.relu(self.bn1(self.conv1(img))))
        for i in range(len(self.cfg.blocks)):
            x = getattr(self, f"layer{i + 1}")(x)
        x = self.avgpool(x).flatten(1)
        return self.fc(x).view(-1, self.cfg.n_style, self.cfg.style_dim) + self.mean_latent


def infer_encoder_config(sd: dict[str, torch.Tensor]) -> EncoderConfig:
    """Read an encoder's architecture off an official-layout state dict."""
    style_dim = sd["mean_latent"].shape[0]
    n_style = sd["fc.weight"].shape[0] // style_dim
    bottleneck = "layer1.0.conv3.weight" in sd
    widths, blocks = [], []
    i = 1
    while f"layer{i}.0.conv1.weight" in sd:
        widths.append(sd[f"layer{i}.0.conv1.weight"].shape[0])
        blocks.append(len({k.split(".")[1] for k in sd if k.startswith(f"layer{i}.")}))
        i += 1
    return EncoderConfig(n_style, style_dim, 256, tuple(widths), tuple(blocks), bottleneck)
