"""The batch-1 fast path (inference.fast) computes what Generator.synthesis computes, in every form."""
import json
import statistics

import pytest
import torch
import torch.nn.functional as F

from anycost.core.memory import keep_freed_memory
from anycost.editing.projection import psnr
from anycost.inference.conv_forms import (
    CONV_FORMS,
    LOWP_CONV_FORMS,
    LOWP_UP_FORMS,
    UP_FORMS,
    FormChooser,
    Int8Conv3x3,
    LayerShape,
    bf16_available,
    form_precision,
    int8_available,
    polyphase_weight,
    upsample_kernel,
    winograd_available,
)
from anycost.inference.fast import FastSynthesis
from anycost.models import Generator, GeneratorConfig, uniform_channels
from anycost.models.ops import make_blur_kernel, upfirdn2d

TOL = 1e-3          # the bound on any fast path against the fp32 reference


@pytest.fixture(scope="module")
def g():
    """Config-f's shape (a clamped plateau, then halving), small; biases and noise away from zero."""
    torch.manual_seed(0)
    gen = Generator(GeneratorConfig.from_multiplier(128, 0.25, 128, style_dim=64, n_mlp=2)).eval()
    with torch.no_grad():
        for name, p in gen.named_parameters():
            if name.endswith("bias") or name.endswith("noise.weight"):
                p.add_(0.2 * torch.randn_like(p))
    gen.update_w_avg(200)
    return gen


@pytest.fixture(scope="module")
def wplus(g):
    z = torch.randn(1, g.cfg.style_dim, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        return g.latent_to_wplus(z, truncation=0.7) + 0.3 * torch.randn(1, g.n_style, g.cfg.style_dim)


CONFIGS = [(None, None), (0.5, 64), (0.25, 32), (0.75, 128)]


@pytest.mark.parametrize("form", [None, *CONV_FORMS, *UP_FORMS])
def test_every_form_matches_the_reference(g, wplus, form):
    if form is not None and "winograd" in form and not winograd_available():
        pytest.skip("NNPACK is not in this torch build")
    fast = FastSynthesis(g, FormChooser(fixed=form))
    with torch.inference_mode():
        for ratio, res in CONFIGS:
            ref = g.synthesis(wplus, channels=ratio, target_res=res)
            out = fast(wplus, channels=ratio, target_res=res)
            assert out.shape == ref.shape and out.is_contiguous()
            err = (out - ref).abs().max().item()
            assert err < TOL, (form, ratio, res, err)
            assert ref.abs().max().item() > 0.5       # a real image, not a near-zero one


def test_nnpack_layers_keep_no_weights_of_ours(g, wplus):
    if not winograd_available():
        pytest.skip("NNPACK is not in this torch build")
    fast = FastSynthesis(g, FormChooser(fixed="winograd"))
    with torch.inference_mode():
        fast(wplus)
    nnpack = [c for c in fast._convs.values() if c.form == "winograd"]
    assert nnpack and all(c._weights == () for c in nnpack)     # it modulates the stored weight per call


class _TopLevelsChannelsLast(FormChooser):
    """Channels-last forms from 64 px up, NCHW forms below: the layout changes once, as on a CPU
    where NHWC wins the large maps only."""

    def __init__(self, conv_form: str):
        super().__init__()
        self.conv_form = conv_form

    def choose(self, shape, time_form):
        if shape.res >= 64:
            return "transpose-blur-nhwc" if shape.up else self.conv_form
        return "polyphase" if shape.up else "wino2-amod"


@pytest.mark.parametrize("conv_form", ["dense-amod-nhwc", "wino4-amod-nhwc", "wino2-amod-nhwc"])
def test_a_layout_change_between_levels_matches_the_reference(g, wplus, conv_form):
    fast = FastSynthesis(g, _TopLevelsChannelsLast(conv_form))
    with torch.inference_mode():
        ref = g.synthesis(wplus)
        out = fast(wplus)
        assert out.is_contiguous() and (out - ref).abs().max().item() < TOL
    top = [c for c in fast._convs.values() if c.shape.res >= 64]
    assert top and all(c.layout == torch.channels_last for c in top)


# PSNR (dB) a preview drawn with every layer it applies to in the form keeps against the float32
# image of the same configuration, on this small random-weight model (measured on 2026-12-03: bf16
# 56-61 dB; int8 35.7 dB at full width and 128 px, 40.7-42.9 dB at 0.5x@64; 2026-12-04: wino2-bf16
# 46.3 dB at full width, its bfloat16 Winograd products being less exact than a bf16 convolution);
# the daemon serves a low-precision preview only where it measures at least 41 dB on the model it serves
LOWP_FLOOR = {"bf16": 50.0, "wino-bf16": 44.0, "int8": 32.0}


def _floor(form: str) -> float:
    return LOWP_FLOOR["int8" if "int8" in form else "wino-bf16" if form.startswith("wino") else "bf16"]


def _lowp_missing(form: str) -> str | None:
    if "bf16" in form and not bf16_available():
        return "this CPU has no native bfloat16 (AVX512-BF16 or AMX)"
    if "int8" in form and not int8_available():
        return "no oneDNN quantized convolution in this torch build"
    return None


@pytest.mark.parametrize("form", [*LOWP_CONV_FORMS, *LOWP_UP_FORMS])
def test_low_precision_forms_stay_close_and_only_previews_use_them(g, wplus, form):
    if _lowp_missing(form):
        pytest.skip(_lowp_missing(form))
    fast = FastSynthesis(g, FormChooser(fixed=form))
    floor = _floor(form)
    with torch.inference_mode():
        for ratio, res in CONFIGS:
            ref = g.synthesis(wplus, channels=ratio, target_res=res)
            low = fast(wplus, channels=ratio, target_res=res, precision="int8")
            assert low.shape == ref.shape and floor <= psnr(low, ref) < 200, (form, ratio, res)
            assert fast.precision_used(ratio, res, "int8") == form_precision(form)
            if "int8" in form:                                # a bf16 preview may not take an int8 form
                assert fast.precision_used(ratio, res, "bf16") == "fp32"
            exact = fast(wplus, channels=ratio, target_res=res)                 # a final: float32 only
            assert (exact - ref).abs().max().item() < TOL
    used = fast.forms()
    assert form in {f for k, f in used.items() if k.endswith("-int8")}
    finals = {f for k, f in used.items() if not k.endswith(("-bf16", "-int8"))}
    assert not finals & set(LOWP_CONV_FORMS + LOWP_UP_FORMS)


def test_int8_convolution_is_close_to_float32_per_layer():
    if not int8_available():
        pytest.skip("no oneDNN quantized convolution in this torch build")
    torch.manual_seed(4)
    x = F.leaky_relu(torch.randn(1, 32, 24, 24), 0.2)
    w, s = torch.randn(16, 32, 3, 3) / 17, torch.randn(32)          # styles of either sign
    ref = F.conv2d(x * s[None, :, None, None], w, padding=1)
    y = Int8Conv3x3(w)(x, s)
    assert y.shape == ref.shape and y.is_contiguous()
    assert float((y - ref).pow(2).mean().sqrt() / ref.std()) < 0.03     # measured about 0.014


def test_zero_noise_and_per_layer_widths_match(g, wplus):
    fast = FastSynthesis(g, FormChooser(fixed="polyphase"), noise="zero")
    widths = uniform_channels(g.cfg, 0.5)
    widths[3] = widths[3] - 3                    # non-uniform: one layer narrower than its neighbours
    with torch.inference_mode():
        ref = g.synthesis(wplus, noise="zero", channels=widths)
        assert (fast(wplus, channels=widths) - ref).abs().max().item() < TOL
    with pytest.raises(ValueError, match="noise"):
        FastSynthesis(g, noise="random")


def test_the_demo_model_matches(wplus):
    from anycost.formats.registry import open_model
    demo = open_model("demo").generator
    z = torch.randn(1, demo.cfg.style_dim, generator=torch.Generator().manual_seed(2))
    fast = FastSynthesis(demo, FormChooser())
    with torch.inference_mode():
        w = demo.latent_to_wplus(z)
        for ratio, res in [(None, None), (0.25, 64)]:
            err = (fast(w, channels=ratio, target_res=res) - demo.synthesis(w, channels=ratio, target_res=res)).abs()
            assert err.max().item() < TOL
    assert set(fast.forms().values()) <= set(CONV_FORMS + UP_FORMS)


def test_blur_folded_into_the_upsampling_kernel():
    """conv_transpose (stride 2) then the blur == one 6x6 transposed conv == four 3x3 phases."""
    torch.manual_seed(3)
    x, w = torch.randn(1, 5, 6, 6), torch.randn(4, 5, 3, 3)
    blur = make_blur_kernel([1, 3, 3, 1], 4.0)
    ref = upfirdn2d(F.conv_transpose2d(x, w.transpose(0, 1), stride=2), blur, pad=(1, 1))
    c = upsample_kernel(w, blur)
    assert c.shape == (4, 5, 6, 6)
    one = F.conv_transpose2d(x, c.transpose(0, 1), stride=2, padding=2)
    four = F.pixel_shuffle(F.conv2d(x, polyphase_weight(c), padding=1), 2)
    assert (one - ref).abs().max() < 1e-4 and (four - ref).abs().max() < 1e-4


def test_form_choice_is_measured_once_and_remembered(tmp_path):
    shape = LayerShape(False, 8, 8, 16)
    calls = []

    def time_form(form):
        calls.append(form)
        return {"dense": 3.0, "dense-amod": 1.0}.get(form, 2.0)

    first = FormChooser(tmp_path)
    assert first.choose(shape, time_form) == "dense-amod"
    assert set(calls) == set(first.candidates(shape))
    saved = list(tmp_path.glob("conv-forms-*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["choices"] == {shape.key(): "dense-amod"}
    calls.clear()
    assert FormChooser(tmp_path).choose(shape, time_form) == "dense-amod" and calls == []
    saved[0].write_text("{not json")
    assert FormChooser(tmp_path).choose(shape, time_form) == "dense-amod" and calls   # measured again
    assert FormChooser(fixed="polyphase").choose(LayerShape(True, 8, 8, 16), time_form) == "polyphase"
    with pytest.raises(ValueError, match="unknown conv form"):
        FormChooser(fixed="fft")


def test_low_precision_forms_are_offered_to_previews_only_and_slow_forms_timed_once(tmp_path):
    chooser = FormChooser(tmp_path)
    final, preview = LayerShape(False, 8, 8, 16), LayerShape(False, 8, 8, 16, "int8")
    assert not set(chooser.candidates(final)) & set(LOWP_CONV_FORMS + LOWP_UP_FORMS)
    offered = set(chooser.candidates(preview)) - set(CONV_FORMS)
    assert offered == {f for f in LOWP_CONV_FORMS if _lowp_missing(f) is None}
    bf16_only = set(chooser.candidates(LayerShape(False, 8, 8, 16, "bf16"))) - set(CONV_FORMS)
    assert bf16_only == offered - {"int8-amod"}
    assert len({final.key(), preview.key(), LayerShape(False, 8, 8, 16, "bf16").key()}) == 3
    with pytest.raises(AssertionError):
        LayerShape(False, 8, 8, 16, "fp16")
    calls = []

    def time_form(form):
        calls.append(form)
        return 100.0 if form == "gemm-amod" else 1.0 + CONV_FORMS.index(form) if form in CONV_FORMS else 0.5
    chooser.choose(final, time_form)
    assert calls.count("gemm-amod") == 2 and calls.count("dense") == 1 + chooser.repeats   # warm-up, one call
    close = [f for f in chooser.candidates(final) if calls.count(f) > 2]
    assert "gemm-amod" not in close and len(close) > 1
    assert calls[-len(close) * (chooser.repeats - 1):] == close * (chooser.repeats - 1)     # rounds interleaved


def test_freed_memory_is_kept_on_glibc():
    import platform
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    assert keep_freed_memory() is True


def test_an_edit_of_later_rows_reuses_the_first_levels(g, wplus):
    from anycost.inference.fast import LastRender
    fast, reuse = FastSynthesis(g, FormChooser()), LastRender()
    with torch.inference_mode():
        fast(wplus, channels=0.5, target_res=64, reuse=reuse)
        assert reuse.reused == 0 and len(reuse.levels) == 5          # 4..64 px
        edited = wplus.clone()
        edited[:, 5:] += 0.5                          # row 5 is read by the 16 px level's rgb and the 32 px conv
        out = fast(edited, channels=0.5, target_res=64, reuse=reuse)
        assert reuse.reused == 2                                      # the 4 and 8 px levels (rows 0..3) kept
        ref = g.synthesis(edited, channels=0.5, target_res=64)
        assert (out - ref).abs().max().item() < TOL
        assert torch.equal(fast(edited, channels=0.5, target_res=64, reuse=reuse), out) and reuse.reused == 5
        fast(edited, channels=0.25, target_res=64, reuse=reuse)      # another configuration: nothing reused
        assert reuse.reused == 0
        edited[:, 0] += 0.1
        out = fast(edited, channels=0.25, target_res=64, reuse=reuse)
        assert reuse.reused == 0
        assert (out - g.synthesis(edited, channels=0.25, target_res=64)).abs().max().item() < TOL
        small = LastRender(max_bytes=1)                               # nothing fits: nothing kept
        fast(wplus, reuse=small)
        assert small.levels == [] and fast(wplus, reuse=small) is not None and small.reused == 0


def test_per_layer_search_meets_a_budget_and_is_cached(g, tmp_path, monkeypatch):
    from anycost.bench import layer_search
    from anycost.models.channels import layer_widths
    fast = FastSynthesis(g, FormChooser())
    wide = layer_search.search(g, fast, 64, budget_ms=1e6, latents=2)
    assert wide.fits and set(wide.ratios) == {1.0} and 0 < wide.psnr < 100
    budget = 0.1 * wide.latency_ms        # far under full width even if that was timed on a busy machine
    found = layer_search.cached_search(g, fast, "g", 64, budget, tmp_path)
    assert found.widths == layer_widths(g.cfg, found.ratios)
    assert found.budget_ms == budget
    # its fidelity, recomputed through the reference path on the search's seeded latents
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        ws = [g.latent_to_wplus(torch.randn(1, g.cfg.style_dim, generator=gen)) for _ in range(4)]
        ref_psnr = statistics.mean(min(psnr(g.synthesis(w, channels=found.widths, target_res=64),
                                            F.adaptive_avg_pool2d(g.synthesis(w).clamp(-1, 1), 64)), 100.0)
                                   for w in ws)
    assert found.psnr == pytest.approx(ref_psnr, abs=0.2) and found.psnr < wide.psnr
    assert found.fits or set(found.ratios[:10]) == {0.25}               # else narrowed as far as it goes
    assert min(found.ratios[:10]) < 1.0 and set(found.ratios[10:]) == {1.0}   # 128 px level not run
    assert 0 < found.psnr < 100
    monkeypatch.setattr(layer_search, "search", lambda *a, **k: pytest.fail("not read from the cache"))
    assert layer_search.cached_search(g, fast, "g", 64, budget, tmp_path) == found


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("channels_last", [False, True])
def test_own_winograd_is_a_3x3_convolution(m, channels_last):
    from anycost.inference.conv_forms import WinogradWeight
    torch.manual_seed(4)
    w = torch.randn(6, 5, 3, 3) / 4
    layout = torch.channels_last if channels_last else torch.contiguous_format
    s, d, b = torch.rand(5) + 0.5, torch.rand(6) + 0.5, torch.randn(6)
    for h, wd in [(4, 4), (8, 8), (6, 10)]:                  # incl. sizes that are not a multiple of m
        x = torch.randn(1, 5, h, wd)
        ref = b[:, None, None] + d[:, None, None] * F.conv2d(x * s[None, :, None, None], w, padding=1)
        out = WinogradWeight(w, m, channels_last)(x.contiguous(memory_format=layout), s, d, b)
        assert out.shape == ref.shape and (out - ref).abs().max() < 1e-4 * ref.abs().max()
    with pytest.raises(ValueError, match="Winograd tile"):
        WinogradWeight(w, 3)


@pytest.mark.parametrize("channels_last", [False, True])
def test_own_winograd_with_bfloat16_products_is_close_and_answers_float32(channels_last):
    from anycost.inference.conv_forms import WinogradWeight
    torch.manual_seed(6)
    w, x = torch.randn(16, 24, 3, 3) / 12, torch.randn(1, 24, 10, 12)
    s, d, b = torch.rand(24) + 0.5, torch.rand(16) + 0.5, torch.randn(16) * 0.1
    ref = b[:, None, None] + d[:, None, None] * F.conv2d(x * s[None, :, None, None], w, padding=1)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    out = WinogradWeight(w, 2, channels_last, torch.bfloat16)(x.contiguous(memory_format=layout), s, d, b)
    assert out.dtype == torch.float32 and out.is_contiguous(memory_format=layout)
    err = ((out - ref).square().mean().sqrt() / ref.std()).item()
    assert 1e-4 < err < 1e-2, err         # rounded (bfloat16: ~0.5 % of the spread), but not far off


@pytest.mark.parametrize("channels_last", [False, True])
def test_own_winograd_finishes_every_output_row_once_in_strips(channels_last, monkeypatch):
    from anycost.inference import conv_forms
    monkeypatch.setattr(conv_forms, "STRIP_BYTES", 1)         # one tile row per strip (channels-last)
    torch.manual_seed(5)
    w, x = torch.randn(6, 5, 3, 3) / 4, torch.randn(1, 5, 14, 10)   # 14 rows: the last strip is cropped
    s, d, b = torch.rand(5) + 0.5, torch.rand(6) + 0.5, torch.randn(6)
    ref = b[:, None, None] + d[:, None, None] * F.conv2d(x * s[None, :, None, None], w, padding=1)
    ref = ref + torch.arange(14.0)[:, None]                   # what `finish` adds: its rows' indices
    bands = []

    def finish(rows, first):
        bands.append((first, rows.shape[2]))
        return rows.add_(torch.arange(first, first + rows.shape[2], dtype=rows.dtype)[:, None])

    layout = torch.channels_last if channels_last else torch.contiguous_format
    out = conv_forms.WinogradWeight(w, 4, channels_last)(x.contiguous(memory_format=layout), s, d, b, finish)
    assert out.shape == ref.shape and (out - ref).abs().max() < 1e-4 * ref.abs().max()
    assert out.is_contiguous(memory_format=layout)
    assert bands == ([(0, 4), (4, 4), (8, 4), (12, 2)] if channels_last else [(0, 14)])


def test_release_keeps_only_the_layers_still_drawn_with_and_redraws_the_rest_the_same(g, wplus):
    fast = FastSynthesis(g, FormChooser(fixed="dense"))
    with torch.inference_mode():
        before = {c: fast(wplus, channels=c[0], target_res=c[1]) for c in CONFIGS}
        low = fast(wplus, channels=CONFIGS[0][0], target_res=CONFIGS[0][1], precision="bf16")
        fast.release([(CONFIGS[0][0], CONFIGS[0][1], "fp32")])
        kept = set(fast.forms())
        assert kept and not any(k.endswith(("-bf16", "-int8")) for k in kept)
        assert len(kept) < len({k for c in CONFIGS for k in fast.layer_keys(*c)})
        for c, img in before.items():                    # prepared again where released: the same image
            assert torch.equal(fast(wplus, channels=c[0], target_res=c[1]), img)
        again = fast(wplus, channels=CONFIGS[0][0], target_res=CONFIGS[0][1], precision="bf16")
        assert torch.equal(again, low)


def test_bfloat16_is_not_offered_where_onednn_is_held_below_it(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")               # how an AVX2 machine is emulated
    assert not bf16_available() and not FormChooser().bf16
    assert not set(FormChooser().candidates(LayerShape(False, 8, 8, 16, "int8"))) & {"bf16-amod"}


def test_channels_last_winograd_output_has_a_channels_last_batch_stride():
    """oneDNN takes a slow path for a map whose batch stride is not H*W*C, even at batch 1."""
    from anycost.inference.conv_forms import WinogradWeight
    x = torch.randn(1, 8, 8, 8).contiguous(memory_format=torch.channels_last)
    one, zero = torch.ones(8), torch.zeros(8)
    out = WinogradWeight(torch.randn(8, 8, 3, 3), 4, channels_last=True)(x, one, one, zero)
    assert out.stride() == x.stride()


def test_rgb_skip_upsampling_refuses_a_kernel_it_cannot_split():
    from anycost.inference.fast import FastToRGB
    from anycost.models.layers import ToRGB
    layer = ToRGB(8, 16, upsample=True)
    layer.upsample.kernel = torch.eye(4)                      # 4x4 but not an outer product
    with pytest.raises(ValueError, match="separable 4-tap"):
        FastToRGB(layer, 8, 1.0)


def test_rgb_from_a_channels_last_map_is_the_same_either_way_and_chosen_once():
    from anycost.inference.fast import FastToRGB
    from anycost.models.layers import ToRGB
    torch.manual_seed(7)
    layer = ToRGB(16, 8, upsample=True)
    with torch.no_grad():
        layer.bias.normal_()
    rgb = FastToRGB(layer, 16, 1.0)
    x, w_row, skip = torch.randn(1, 16, 12, 12), torch.randn(1, 8), torch.randn(1, 3, 6, 6)
    with torch.inference_mode():
        ref = rgb(x, w_row, skip)                                      # NCHW: one way only
        assert rgb._rows_first == {}
        nhwc = x.contiguous(memory_format=torch.channels_last)
        chosen = rgb(nhwc, w_row, skip)
        assert list(rgb._rows_first) == [(144, 16)]
        for way in (False, True):
            rgb._rows_first[(144, 16)] = way
            out = rgb(nhwc, w_row, skip)
            assert out.shape == (1, 3, 12, 12) and out.is_contiguous()
            assert (out - ref).abs().max().item() < 1e-5
        assert (chosen - ref).abs().max().item() < 1e-5
