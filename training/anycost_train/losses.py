"""GAN losses (StyleGAN2) and the anycost consistency loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from anycost.editing.perceptual import Perceptual
from anycost.editing.projection import downsample


def d_logistic(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def g_nonsaturating(fake_pred: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_pred).mean()


def r1_penalty(real_pred: torch.Tensor, real_img: torch.Tensor) -> torch.Tensor:
    (grad,) = torch.autograd.grad(real_pred.sum(), real_img, create_graph=True)
    return grad.square().flatten(1).sum(1).mean()


def path_length(fake_img: torch.Tensor, wplus: torch.Tensor, mean_length: torch.Tensor, decay: float = 0.01,
                generator: torch.Generator | None = None):
    """StyleGAN2 path-length regulariser: (|J^T y| - a)^2 with a the running mean. `generator`
    (a CPU one) draws the projection noise, so a resumed run draws what the straight run did."""
    noise = (torch.randn(fake_img.shape, generator=generator).to(fake_img)
             / (fake_img.shape[2] * fake_img.shape[3]) ** 0.5)
    (grad,) = torch.autograd.grad((fake_img * noise).sum(), wplus, create_graph=True)
    lengths = grad.square().sum(2).mean(1).sqrt()
    new_mean = mean_length + decay * (lengths.mean().detach() - mean_length)
    return (lengths - new_mean).square().mean(), new_mean


def consistency(sub_img: torch.Tensor, full_img: torch.Tensor, perceptual: Perceptual) -> torch.Tensor:
    """MSE + perceptual distance between a sub-generator's output and the full generator's output
    for the same W and noise, the latter downsampled (area) to the sub-generator's resolution."""
    target = downsample(full_img, sub_img.shape[-1])
    return F.mse_loss(sub_img, target) + perceptual.distance(sub_img, target).mean()
