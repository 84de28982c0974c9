"""Elastic resolution and channels: lower settings skip work, configurations are per call."""
import threading

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from anycost.models import Generator, GeneratorConfig, architecture, resolve_channels
from anycost.models.layers import StyledConv, ToRGB
from anycost.models.macs import count_macs


@pytest.fixture(scope="module")
def g():
    torch.manual_seed(0)
    gen = Generator(GeneratorConfig.from_multiplier(128, 0.125, 64, style_dim=64, n_mlp=2)).eval()
    with torch.no_grad():   # noise strengths start at zero; make noise matter
        for m in gen.modules():
            if isinstance(m, StyledConv):
                m.noise.weight.fill_(0.3)
    gen.update_w_avg(200)
    return gen


@pytest.fixture(scope="module")
def z():
    return torch.randn(2, 64, generator=torch.Generator().manual_seed(1))


def record_calls(g, **kwargs):
    """Run g and return, per StyledConv/ToRGB, the (in, out) channels it actually saw."""
    seen, hooks = {}, []
    for name, m in g.named_modules():
        if isinstance(m, (StyledConv, ToRGB)):
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: seen.__setitem__(name, (inp[0].shape[1], out.shape[1],
                                                                         out.shape[-1]))))
    try:
        with torch.no_grad():
            out = g(kwargs.pop("z"), **kwargs)
    finally:
        for h in hooks:
            h.remove()
    return out, seen


@pytest.mark.parametrize("target", [128, 64, 32, 16])
def test_early_exit_skips_blocks_above_target(g, z, target):
    out, seen = record_calls(g, z=z, target_res=target)
    assert out.shape == (2, 3, target, target)
    ran_res = {res for (_, _, res) in seen.values()}
    assert max(ran_res) == target                               # nothing above the target ran
    n_blocks_run = sum(1 for name in seen if name.startswith("to_rgbs."))
    assert n_blocks_run == g.cfg.levels.index(target)


def test_low_resolution_output_is_the_skip_image_of_that_level(g, z):
    with torch.no_grad():
        _, rgbs = g(z, return_rgbs=True)
        for res, rgb in zip(g.cfg.levels, rgbs, strict=True):
            assert torch.allclose(g(z, target_res=res), rgb, atol=1e-6)


@pytest.mark.parametrize("ratio", [0.75, 0.5, 0.25])
def test_channel_ratio_uses_first_k_channels(g, z, ratio):
    widths = resolve_channels(g.cfg, ratio)
    _, seen = record_calls(g, z=z, channels=ratio)
    assert seen["conv1"][1] == widths[1]
    for i in range(len(g.convs)):
        assert seen[f"convs.{i}"][1] == widths[i + 2]          # output width = the configuration
    assert sum(widths) < sum(g.cfg.full_channels)


def test_per_layer_list(g, z):
    widths = [c // 2 if i % 3 else c for i, c in enumerate(g.cfg.full_channels)]
    out, seen = record_calls(g, z=z, channels=widths)
    assert out.shape == (2, 3, 128, 128)
    assert [seen["conv1"][1]] + [seen[f"convs.{i}"][1] for i in range(len(g.convs))] == widths[1:]


def test_macs_fall_with_channels_and_resolution(g):
    full = count_macs(g.cfg).true
    for ratio in (0.75, 0.5, 0.25):
        assert count_macs(g.cfg, ratio).true < full
    for res in (64, 32, 16):
        assert count_macs(g.cfg, None, res).true < count_macs(g.cfg, None, res * 2).true


@pytest.mark.parametrize("channels,target", [(None, 128), (0.5, 128), (None, 32), (0.25, 64)])
def test_mac_counter_matches_flop_counter(g, channels, target):
    z1 = torch.randn(1, 64)
    with FlopCounterMode(display=False) as fc:   # (its module tracker needs autograd on)
        g(z1, channels=channels, target_res=target, impl="activation")
    assert fc.get_total_flops() // 2 == count_macs(g.cfg, channels, target).true


def test_paper_convention_for_config_f():
    """The paper's Table numbers (144 G for the 1024 config-f, ~75 G true)."""
    cfg = architecture("ffhq-1024")
    m = count_macs(cfg)
    assert round(m.true / 1e9, 1) == 75.4
    assert abs(m.paper / 1e9 - 144.4) < 0.5
    assert round(count_macs(cfg, 0.25, 1024).true / 1e9, 1) == 6.8


def test_configuration_is_per_call_across_threads(g, z):
    """Concurrent calls with different configurations give the same results as sequential ones."""
    configs = [(None, None), (0.5, 64), (0.25, 128), (0.75, 32)]
    with torch.no_grad():
        expected = [g(z, channels=c, target_res=t) for c, t in configs]
    results = {}

    def worker(k):
        with torch.no_grad():
            for _ in range(5):
                c, t = configs[k]
                results.setdefault(k, []).append(g(z, channels=c, target_res=t))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(configs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, outs in results.items():
        for out in outs:
            assert torch.equal(out, expected[k])


@pytest.mark.parametrize("bad,msg", [(0.0, "ratio"), (1.5, "ratio"), ([8, 8], "entries"),
                                     ([10 ** 4] * 12, "between")])
def test_bad_channel_specs(g, bad, msg):
    with pytest.raises(ValueError, match=msg):
        resolve_channels(g.cfg, bad)


def test_bad_resolution(g, z):
    for res in (256, 100, 2):
        with pytest.raises(ValueError, match="px"):
            g(z, target_res=res)


def test_noise_modes_and_truncation(g, z):
    with torch.no_grad():
        const = g(z)
        assert torch.equal(const, g(z, noise="const"))
        r1 = g(z, noise="random", generator=torch.Generator().manual_seed(5))
        r2 = g(z, noise="random", generator=torch.Generator().manual_seed(5))
        assert torch.equal(r1, r2) and not torch.allclose(r1, const)
        # truncation 0 collapses every latent to the mean image
        t0 = g(z, truncation=0.0)
        assert torch.allclose(t0[0], t0[1], atol=1e-5)
        assert torch.allclose(t0, g(g.w_avg.expand(2, -1), space="w"), atol=1e-5)
