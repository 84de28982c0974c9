"""Pieces of a GAN training step shared by the anycost and the CREPS trainers."""
from __future__ import annotations

import torch

from . import dist
from .data import ProceduralFaces


def batch_of_step(data, step: int, batch: int, rank: int, world: int, data_seed: int, flip: bool) -> torch.Tensor:
    """This rank's real images of `step`: a deterministic function of the step (exact resume).
    Folder data runs through a fresh permutation per epoch; flips are a hash of the position."""
    first = (step * world + rank) * batch
    if hasattr(data, "batch"):              # drawn, not stored (e.g. a teacher's samples): in one call
        return data.batch(first, batch)
    if isinstance(data, ProceduralFaces):
        return torch.stack([data[first + j] for j in range(batch)])
    n = len(data)
    items = []
    for pos in range(first, first + batch):
        epoch, k = divmod(pos, n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(data_seed * 7919 + epoch))
        x = data[int(perm[k])]
        items.append(x.flip(-1) if flip and (pos * 2654435761) % 7 < 3 else x)
    return torch.stack(items)


def apply_loss(net: torch.nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One optimizer step of `net` on `loss`, gradients averaged over the processes."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    dist.average_gradients(net.parameters())
    opt.step()


@torch.no_grad()
def update_ema(ema: torch.nn.Module, net: torch.nn.Module, images_per_step: int, ema_kimg: float) -> None:
    """Exponential moving average with a half-life of `ema_kimg` thousand images; buffers copied."""
    decay = 0.5 ** (images_per_step / (ema_kimg * 1000))
    for p_ema, p in zip(ema.parameters(), net.parameters(), strict=True):
        p_ema.copy_(p.lerp(p_ema, decay))
    for b_ema, b in zip(ema.buffers(), net.buffers(), strict=True):
        b_ema.copy_(b)
