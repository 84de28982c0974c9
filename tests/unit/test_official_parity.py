"""Our generator computes the official Anycost GAN function: every recorded call of the fixture."""
import pytest
import torch

from anycost.formats.checkpoints import load_model
from anycost.models import uniform_channels

TOL = 1e-4


@pytest.fixture(scope="module")
def g(official_file):
    model = load_model(official_file)
    return model.generator


def max_diff(a, b):
    if isinstance(b, list):
        assert len(a) == len(b)
        return max((x - y).abs().max().item() for x, y in zip(a, b, strict=True))
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


def calls(g, fx):
    z, o = fx["z"], fx["outputs"]
    t = g.mapping(z.view(-1, 512)).mean(0, keepdim=True)
    return {
        "w": lambda impl: g.mapping(z.view(-1, 512)),
        "full": lambda impl: g(z, impl=impl),
        "ratio0.5": lambda impl: g(z, channels=0.5, impl=impl),
        "ratio0.25": lambda impl: g(z, channels=0.25, impl=impl),
        "target_res64": lambda impl: g(z, target_res=64, impl=impl),
        "ratio0.5_res64": lambda impl: g(z, channels=0.5, target_res=64, impl=impl),
        "all_rgbs_full": lambda impl: g(z, return_rgbs=True, impl=impl)[1],
        "trunc0.7": lambda impl: g(z, truncation=0.7, truncation_latent=t, impl=impl),
        "wplus": lambda impl: g(o["wplus_input"], space="w", impl=impl),
        "mix_inject4": lambda impl: g(fx["z_mix"], inject_index=4, impl=impl),
        "explicit_noise_neg": lambda impl: g(z, noise=[-n for n in fx["noises"]], impl=impl),
    }


def test_architecture_read_off_shapes(g, official_fixture):
    cfg, derived = official_fixture["config"], official_fixture["derived"]
    assert g.cfg.resolution == cfg["resolution"]
    assert g.cfg.style_dim == cfg["style_dim"] and g.cfg.n_mlp == cfg["n_mlp"]
    assert g.cfg.channels == {r: c for r, c in derived["channels"].items() if r <= cfg["resolution"]}
    assert g.n_style == derived["n_style"] and g.cfg.num_layers == derived["num_layers"]


@pytest.mark.parametrize("impl", ["grouped", "activation"])
def test_every_recorded_call_matches(g, official_fixture, impl):
    expected = official_fixture["outputs"]
    recorded = set(official_fixture["calls"])
    ours = calls(g, official_fixture)
    assert recorded <= set(ours), f"fixture has calls we do not replay: {recorded - set(ours)}"
    with torch.no_grad():
        diffs = {name: max_diff(fn(impl), expected[name]) for name, fn in ours.items()}
    assert all(d < TOL for d in diffs.values()), diffs


def test_batch_one_weight_modulation_matches(g, official_fixture):
    """Batch 1 takes the weight-modulated plain-conv path: same function."""
    z, full = official_fixture["z"], official_fixture["outputs"]["full"]
    with torch.no_grad():
        for i in range(2):
            assert max_diff(g(z[i:i + 1], impl="weight"), full[i:i + 1]) < TOL
            assert max_diff(g(z[i:i + 1]), full[i:i + 1]) < TOL


def test_uniform_ratio_rule_matches_official_lists(g, official_fixture):
    for ratio, widths in official_fixture["sub_channel_configs"].items():
        assert uniform_channels(g.cfg, ratio) == widths


def test_sub_generator_outputs_really_differ(g, official_fixture):
    """Guards the parity test itself: the configurations are distinct functions."""
    o = official_fixture["outputs"]
    assert max_diff(o["ratio0.5"], o["full"]) > 0.01
    assert max_diff(o["ratio0.25"], o["ratio0.5"]) > 0.01
