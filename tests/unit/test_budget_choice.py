"""The budget choice: which calibrated sub-generator serves a preview, and how it follows a machine
that has become slower than when it was calibrated (a busy editor, a shared VM)."""
import torch

from anycost.formats.checkpoints import Model
from anycost.models import Generator, GeneratorConfig
from anycost.service.calibration import Slowdown, SubConfig, pick
from anycost.service.served_models import ServedAnycost

# best quality first, as rank_configs orders them
RANKED = [SubConfig(1.0, 64, 40.0, 3.0), SubConfig(0.5, 64, 20.0, 2.0), SubConfig(0.25, 32, 8.0, 1.0)]


def test_pick_takes_the_best_configuration_that_fits_and_the_fastest_when_none_does():
    assert pick(RANKED, 50) == RANKED[0]
    assert pick(RANKED, 30) == RANKED[1]
    assert pick(RANKED, 5) == RANKED[2]


def test_a_slowdown_makes_the_choice_cheaper():
    assert pick(RANKED, 50, slowdown=1.5) == RANKED[1]     # 40 ms calibrated is 60 ms now
    assert pick(RANKED, 50, slowdown=3.0) == RANKED[2]


def test_slowdown_is_the_median_of_recent_ratios_between_one_and_its_cap():
    s = Slowdown(window=4, least_samples=3, most=4.0)
    c = RANKED[1]                                          # calibrated at 20 ms
    s.observe(c, 60.0)
    s.observe(c, 60.0)
    assert s.factor == 1.0                                 # two calls are not a trend
    s.observe(c, 20.0)
    assert s.factor == 3.0                                 # median of 3, 3, 1
    for _ in range(4):
        s.observe(c, 10.0)                                 # faster than calibrated (a reused render)
    assert s.factor == 1.0                                 # never below the calibration
    for _ in range(4):
        s.observe(c, 1000.0)
    assert s.factor == 4.0


def _served_tiny(state, seed: int, resolution: int, multiplier: float, channel_max: int):
    """A small untrained generator, served and calibrated in `state`."""
    torch.manual_seed(seed)
    g = Generator(GeneratorConfig.from_multiplier(resolution, multiplier, channel_max, style_dim=32, n_mlp=2)).eval()
    g.update_w_avg(50)
    sm = ServedAnycost("tiny", Model(g, {"untrained": True}), {})
    sm.calibrate(state)
    assert sm.fast is not None and sm.ranked is not None
    return g, sm


def test_served_previews_are_observed_except_those_that_reuse_levels(tmp_path):
    g, sm = _served_tiny(tmp_path, 0, 32, 0.125, 32)
    assert sm.ranked is not None
    config = next(c for c in sm.ranked if c.resolution < 32)
    wplus = g.latent_to_wplus(torch.zeros(1, 32))
    with torch.inference_mode():
        sm.draw(wplus, config, None, session="s")
        assert len(sm.slowdown.ratios) == 1
        sm.draw(wplus, config, None, session="s")          # same W+: every level taken from the last render
        assert len(sm.slowdown.ratios) == 1
        moved = wplus.clone()
        moved[:, 0] += 1.0                                 # the first row moved: nothing reused
        sm.draw(moved, config, None, session="s")
        assert len(sm.slowdown.ratios) == 2
        sm.draw(moved, None, None, session="s")            # the final is not a preview
        assert len(sm.slowdown.ratios) == 2


def test_previews_take_low_precision_only_where_it_measured_close_and_finals_never(tmp_path):
    from anycost.editing.consistency import LOWP_MARGIN, LOWP_MIN_PSNR
    from anycost.inference.conv_forms import FormChooser
    from anycost.service.calibration import measured_preview_precision

    g, sm = _served_tiny(tmp_path, 1, 64, 0.25, 64)
    assert sm.fast is not None and sm.ranked is not None
    chooser: FormChooser = sm.fast.chooser
    if not (chooser.bf16 or chooser.int8):
        assert sm.preview_precision == {}
        return
    configs = [(c.ratio, c.resolution) for c in sm.ranked]
    cache = list((tmp_path / "calibration").glob("precision-*.json"))
    measured = measured_preview_precision(g, sm.fast, configs, tmp_path / "calibration")
    assert cache and cache[0].stat().st_mtime_ns == list((tmp_path / "calibration").glob("precision-*.json"))[0] \
        .stat().st_mtime_ns                                                     # read back, not measured again
    least = LOWP_MIN_PSNR + LOWP_MARGIN                   # over the samples, for faces not sampled
    for c, m in measured.items():
        assert m["psnr"] and all(p in ("bf16", "int8") for p in m["psnr"])
        if m["precision"] == "fp32":                      # nothing low enough was close enough
            assert max(m["psnr"].values()) < least and c not in sm.preview_precision
        else:                                             # the lowest tier tried that passed
            assert m["psnr"][m["used"]] >= least and sm.preview_precision[c] == m
            assert sm.fast.precision_used(*c, m["precision"]) == m["used"] != "fp32"
            if m["used"] == "bf16" and chooser.int8 and m["precision"] == "bf16":
                assert m["psnr"].get("int8", 0) < least  # int8 was tried first and failed
    wplus = g.latent_to_wplus(torch.randn(1, 32))
    with torch.inference_mode():
        final = sm.draw(wplus, None, None)
        assert (final - g.synthesis(wplus)).abs().max().item() < 1e-3             # the final: float32
        for c in sm.ranked:
            served = sm.preview_precision.get((c.ratio, c.resolution), {}).get("used", "fp32")
            assert sm.describe_config(c, None)["precision"] == served
    assert sm.describe_config(None, None)["precision"] == "fp32"
    off = ServedAnycost("tiny", Model(g, {"untrained": True}), {}, lowp_previews=False)
    off.calibrate(tmp_path)
    assert off.preview_precision == {}
    assert all(off.describe_config(c, None)["precision"] == "fp32" for c in off.ranked or [])
