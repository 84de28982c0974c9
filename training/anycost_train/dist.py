"""Distributed helpers: no-ops in a single process; under torchrun, gradient all-reduce.

Gradients are averaged with one flat all_reduce per step (as NVlabs' StyleGAN3 does) rather than
by wrapping the networks in DistributedDataParallel: every step runs a different sub-generator, so
parameters go unused step to step, and lazy R1 needs a double backward; both are awkward under the
DDP wrapper. All ranks sample the same sub-generator each step (a shared RNG), so the same
parameters have gradients on every rank.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as td


def init(device: str) -> tuple[int, int]:
    """(rank, world size); starts the process group when launched by torchrun."""
    if "RANK" not in os.environ or td.is_initialized():
        return rank(), world()
    td.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return td.get_rank(), td.get_world_size()


def rank() -> int:
    return td.get_rank() if td.is_available() and td.is_initialized() else 0


def world() -> int:
    return td.get_world_size() if td.is_available() and td.is_initialized() else 1


def broadcast_module(module: torch.nn.Module) -> None:
    if world() > 1:
        for t in list(module.parameters()) + list(module.buffers()):
            td.broadcast(t.data, src=0)


def average_gradients(params) -> None:
    if world() == 1:
        return
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    td.all_reduce(flat)
    flat /= world()
    offset = 0
    for p in params:
        n = p.grad.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n


def mean(value: float, device) -> float:
    if world() == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    td.all_reduce(t)
    return (t / world()).item()


def barrier() -> None:
    if world() > 1:
        td.barrier()


def shutdown() -> None:
    if td.is_available() and td.is_initialized():
        td.destroy_process_group()


def checksum(modules) -> float:
    """A float64 fingerprint of the weights (sum of squares and of index-weighted values)."""
    total = torch.zeros(2, dtype=torch.float64)
    for m in modules:
        for t in m.state_dict().values():
            if t.is_floating_point():
                v = t.detach().double().flatten().cpu()
                total[0] += v.square().sum()
                total[1] += (v * torch.arange(1, v.numel() + 1, dtype=torch.float64)).sum()
    return float(total[0] + total[1] * 1e-6)


def check_replicas(modules) -> float:
    """Raise if the ranks' weights differ (they must stay identical); returns the checksum."""
    value = checksum(modules)
    if world() > 1:
        t = torch.tensor([value], dtype=torch.float64)
        gathered = [torch.zeros_like(t) for _ in range(world())]
        td.all_gather(gathered, t)
        values = [g.item() for g in gathered]
        if any(v != values[0] for v in values):
            raise RuntimeError(f"replicas diverged: weight checksums per rank {values}")
    return value
