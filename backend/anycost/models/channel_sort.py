"""Reorder a generator's channels by importance without changing the function it computes.

The anycost channel stage keeps the *first* k channels of every layer, so the most useful channels
must come first before that stage starts (the paper's `sort_channel`). The importance of a channel
of a feature map is how strongly its consumer uses it: the L1 norm of the consumer conv's weights on
that input channel, times the mean |style scale| it receives over sampled w.
"""
from __future__ import annotations

import torch

from anycost.models.generator import Generator
from anycost.models.layers import ModulatedConv2d


@torch.no_grad()
def sort_channels(g: Generator, n_samples: int = 2000, seed: int = 0) -> list[torch.Tensor]:
    """Permute every feature map of `g` in place, most important channel first.

    Returns the permutation applied to each channel entry (constant input, conv1, convs...).
    """
    z = torch.randn(n_samples, g.cfg.style_dim, generator=torch.Generator().manual_seed(seed))
    w = g.mapping(z.to(g.w_avg.device))
    producers, consumers = _graph(g)
    perms = []
    for producer, users in zip(producers, consumers, strict=True):
        scored = users[0]                      # the next conv, or the toRGB for the last map
        importance = scored.weight[0].abs().sum(dim=(0, 2, 3)) * scored.modulation(w).abs().mean(0)
        perm = torch.argsort(importance, descending=True)
        _permute_outputs(producer, perm)
        for user in users:
            _permute_inputs(user, perm)
        perms.append(perm)
    return perms


def _graph(g: Generator):
    """For each channel entry: the module that produces it and the modulated convs that read it."""
    producers = [g.input, g.conv1] + list(g.convs)
    consumers = [[g.conv1.conv], [g.convs[0].conv, g.to_rgb1.conv]]   # every model has >= 1 block
    n_blocks = len(g.to_rgbs)
    for j in range(n_blocks):
        consumers.append([g.convs[2 * j + 1].conv])
        nxt = [g.convs[2 * j + 2].conv] if j + 1 < n_blocks else []
        consumers.append(nxt + [g.to_rgbs[j].conv])
    return producers, consumers


def _permute_outputs(module, perm: torch.Tensor) -> None:
    if hasattr(module, "input"):                     # ConstantInput [1, C, 4, 4]
        module.input.copy_(module.input[:, perm])
        return
    module.conv.weight.copy_(module.conv.weight[:, perm])   # [1, O, I, k, k]
    module.activate.bias.copy_(module.activate.bias[perm])


def _permute_inputs(conv: ModulatedConv2d, perm: torch.Tensor) -> None:
    conv.weight.copy_(conv.weight[:, :, perm])
    conv.modulation.weight.copy_(conv.modulation.weight[perm])
    conv.modulation.bias.copy_(conv.modulation.bias[perm])
