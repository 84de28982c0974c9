"""Batch-1 inference path of the Anycost generator: the same network as `Generator.synthesis`,
computed with less work per call. Used by the daemon and the benchmarks; `synthesis` stays the
reference that training, tests and every other batch size use.

What it does differently (each exact up to float rounding, tested against the reference):
* weights prepared once per layer and width: sliced, equalised-LR scale applied, contiguous, the
  demodulation's sum of squares over the kernel taps precomputed ([O, I], a mat-vec per call);
* the sqrt(2) gain of every leaky ReLU folded into the next layer's modulated weights, the bias into
  the convolution, the noise added and the ReLU applied in place: one pass over the feature map
  instead of four fresh tensors (at 1024 px, each fresh tensor costs page faults);
* the convolution form of every layer chosen by measurement (`conv_forms`), e.g. Winograd on large
  maps, the blur folded into the upsampling kernel, or channels-last maps at the top levels (each
  layer converts its input to its form's layout; the image returned is contiguous NCHW);
* ToRGB as one matrix product, and the RGB skip upsampled by the separable FIR one axis at a time
  (elementwise passes) instead of zero insertion + 2-D FIR.
With `precision="bf16"` or `"int8"` (previews, never the final) a layer may also take a bfloat16
(or also an int8) form where that measures faster; those are close to the reference, not equal
(`conv_forms`).
Only the stored ("const") or no ("zero") noise is supported: random noise is a training feature.
"""
from __future__ import annotations

import math
from typing import Sequence, cast

import torch
import torch.nn.functional as F

from anycost.core.timing import timed
from anycost.inference.conv_forms import (
    PRECISIONS,
    FormChooser,
    Int8Conv3x3,
    LayerShape,
    WinogradWeight,
    conv3x3,
    form_layout,
    form_precision,
    polyphase_weight,
    upsample_kernel,
)
from anycost.models.channels import ChannelSpec, resolve_channels
from anycost.models.generator import Generator
from anycost.models.layers import StyledConv, ToRGB

GAIN = math.sqrt(2.0)   # the leaky ReLU's gain, applied by the next layer
# our Winograd forms (`WinogradWeight`): tile size m of F(m x m, 3 x 3), dtype of the products
OWN_WINOGRAD = {"wino2-amod": (2, None), "wino4-amod": (4, None), "wino2-bf16": (2, torch.bfloat16)}


class _Styles:
    """The per-layer affine map W -> input-channel styles, with its constants applied once."""

    def __init__(self, modulation, in_ch: int):
        self.weight = (modulation.weight[:in_ch] * modulation.scale).contiguous()
        self.bias = (modulation.bias[:in_ch] * modulation.lr_mul).contiguous()

    def __call__(self, w_row: torch.Tensor) -> torch.Tensor:
        return F.linear(w_row, self.weight, self.bias)[0]          # [I]


class FastStyledConv:
    """One modulated 3x3 conv (+ upsampling) -> bias, noise, leaky ReLU (gain left to the next layer)."""

    def __init__(self, layer: StyledConv, in_ch: int, out_ch: int, res: int, gain_in: float,
                 noise: torch.Tensor | None, precision: str = "fp32"):
        conv = layer.conv
        self.shape = LayerShape(conv.upsample, in_ch, out_ch, res, precision)
        self.styles = _Styles(conv.modulation, in_ch)
        self.w = (conv.weight[0, :out_ch, :in_ch] * conv.scale).contiguous()      # [O, I, 3, 3]
        self.wsq = self.w.square().sum(dim=(2, 3))                                  # [O, I]
        self.gain_in = gain_in
        self.bias = layer.activate.bias[:out_ch].contiguous()
        # the activation gain is applied by the next layer (GAIN, its gain_in): clamp before it
        self.clamp = None if layer.activate.clamp is None else layer.activate.clamp / GAIN
        self.noise = None if noise is None else (layer.noise.weight * noise).contiguous()   # [1, 1, H, W]
        self.blur = conv.blur.kernel if conv.upsample else None
        self.form: str | None = None
        self._weights: tuple = ()                            # what the form computes with (set_form)

    def set_form(self, form: str, prepared: dict[str, tuple]) -> None:
        """Compute in `form` from now on. `prepared`: the weights made so far, by form, looked up
        and added to; the form choice's interleaved rounds switch between forms many times (a
        512->512 Winograd weight takes ~0.3 s to transform), and once a form is chosen the caller
        drops the dict, so only the chosen form's weights stay."""
        if form not in prepared:
            prepared[form] = self._prepare(form)
        self.form, self._weights = form, prepared[form]

    def _prepare(self, form: str) -> tuple:
        base = form.removesuffix("-nhwc")                    # a channels-last twin needs what its form needs
        if base in OWN_WINOGRAD:                             # (NNPACK's "winograd" needs none)
            m, products = OWN_WINOGRAD[base]
            return (WinogradWeight(self.w, m, form != base, products),)
        if base.startswith("polyphase"):
            assert self.blur is not None                     # the upsampling forms: an upsampling layer
            p = polyphase_weight(upsample_kernel(self.w, self.blur))
            return (self._low(base, p), self.bias.repeat_interleave(4))
        if base in ("bf16-amod", "int8-amod"):
            return (self._low(base, self.w),)
        if base in ("transpose-blur", "transpose-blur-bf16", "fold-amod"):
            assert self.blur is not None
            o, i = self.w.shape[:2]
            blur = self.blur.flip([0, 1])[None, None].expand(o, 1, 4, 4).contiguous()   # depthwise
            if base == "transpose-blur":                     # modulates the stored weight per call
                return (blur,)
            if base == "transpose-blur-bf16":
                return (blur.to(torch.bfloat16), self.w.transpose(0, 1).to(torch.bfloat16).contiguous())
            cols = self.w.permute(0, 2, 3, 1).reshape(o * 9, i).contiguous()       # rows (o, ky, kx)
            return (blur, cols)
        if base == "gemm-amod":
            return (self.w.reshape(self.w.shape[0], -1),)
        return ()

    @staticmethod
    def _low(form: str, w: torch.Tensor):
        """A fixed 3x3 weight as the form computes with it."""
        precision = form_precision(form)
        if precision == "bf16":
            return w.to(torch.bfloat16)
        if precision == "int8":
            return Int8Conv3x3(w)
        return w

    @property
    def layout(self) -> torch.memory_format:
        """The layout this layer reads and writes (its form's)."""
        assert self.form is not None
        return form_layout(self.form)

    def __call__(self, x: torch.Tensor, w_row: torch.Tensor) -> torch.Tensor:
        s = self.styles(w_row)
        d = torch.rsqrt(self.wsq @ s.square() + 1e-8)                               # demodulation [O]
        s = s * self.gain_in
        assert self.form is not None                         # set_form ran (FastSynthesis._conv)
        x = x.contiguous(memory_format=self.layout)          # a copy only where the layout changes
        form = self.form.removesuffix("-nhwc")               # the channels-last twins: same code
        if form == "dense-amod":
            y = F.conv2d(x * s[None, :, None, None], self.w, padding=1)           # NHWC in: NHWC out
            y = torch.addcmul(self.bias[:, None, None], y, d[:, None, None])
        elif form in ("dense", "winograd"):
            wm = self.w * (d[:, None] * s[None, :])[:, :, None, None]
            y = conv3x3(x, wm, self.bias, winograd=form == "winograd")
        elif form in OWN_WINOGRAD:                                # finished band by band
            return self._weights[0](x, s, d, self.bias, self._epilogue_rows)
        elif form == "bf16-amod":
            y = F.conv2d((x * s[None, :, None, None]).to(torch.bfloat16), self._weights[0], padding=1)
            y = torch.addcmul(self.bias[:, None, None], y, d[:, None, None])      # back in float32
        elif form == "int8-amod":
            y = self._weights[0](x, s)
            y = torch.addcmul(self.bias[:, None, None], y, d[:, None, None])
        elif form == "gemm-amod":
            (w2,) = self._weights
            h, w = x.shape[2:]
            y = (w2 @ F.unfold(x * s[None, :, None, None], 3, padding=1)[0]).view(1, -1, h, w)
            y = torch.addcmul(self.bias[:, None, None], y, d[:, None, None])
        elif form == "transpose-blur":
            wm = self.w * (d[:, None] * s[None, :])[:, :, None, None]
            y = F.conv_transpose2d(x, wm.transpose(0, 1), stride=2)
            blur = self._weights[0]
            y = F.conv2d(y, blur, self.bias, padding=1, groups=y.shape[1])
        elif form == "transpose-blur-bf16":                     # activation modulation: the weight fixed
            blur, wt = self._weights
            y = F.conv_transpose2d((x * s[None, :, None, None]).to(torch.bfloat16), wt, stride=2)
            y = F.conv2d(y, blur, None, padding=1, groups=y.shape[1])
            y = torch.addcmul(self.bias[:, None, None], y, d[:, None, None])      # back in float32
        elif form == "fold-amod":
            blur, cols = self._weights
            h, w = x.shape[2:]
            y = cols @ (x[0] * s[:, None, None]).reshape(-1, h * w)                 # [O*9, H*W]
            y = F.fold(y[None], (2 * h + 1, 2 * w + 1), 3, stride=2)               # conv_transpose
            y = F.conv2d(y, blur, None, padding=1, groups=y.shape[1])
            y = torch.addcmul(self.bias[:, None, None], y, d[:, None, None])
        elif form in ("polyphase-bf16", "polyphase-int8"):     # activation modulation: the weight fixed
            p, bias4 = self._weights
            if form == "polyphase-bf16":
                y = F.conv2d((x * s[None, :, None, None]).to(torch.bfloat16), p, padding=1)
            else:
                y = p(x, s)
            y = torch.addcmul(bias4[:, None, None], y, d.repeat_interleave(4)[:, None, None])
            return self._epilogue(y, shuffled=True)
        else:  # polyphase, polyphase-winograd
            p, bias4 = self._weights
            pm = p * (d.repeat_interleave(4)[:, None] * s[None, :])[:, :, None, None]
            y = conv3x3(x, pm, bias4, winograd=form == "polyphase-winograd")
            return self._epilogue(y, shuffled=True)
        return self._epilogue(y)

    def _epilogue(self, y: torch.Tensor, shuffled: bool = False) -> torch.Tensor:
        """Noise, then leaky ReLU, in place. `shuffled`: y holds the four phases [1, 4*O, H, W];
        the first pass reads them through a strided view and writes the [1, O, 2H, 2W] image
        (pixel_shuffle without its own pass)."""
        if shuffled:
            _, c4, h, w = y.shape
            phases = y.view(c4 // 4, 2, 2, h, w).permute(0, 3, 1, 4, 2)         # [O, H, 2, W, 2]
            out = torch.empty(c4 // 4, h, 2, w, 2, dtype=y.dtype, device=y.device)
            if self.noise is not None:
                torch.add(phases, self.noise.view(1, h, 2, w, 2), out=out)
            else:
                out.copy_(phases)
            return self._activate(out.view(1, c4 // 4, 2 * h, 2 * w))
        return self._epilogue_rows(y, 0)

    def _epilogue_rows(self, y: torch.Tensor, first_row: int) -> torch.Tensor:
        """Noise, then leaky ReLU, in place, on the output rows first_row.. (all of them, or a band)."""
        if self.noise is not None:
            y.add_(self.noise[:, :, first_row:first_row + y.shape[2]])
        return self._activate(y)

    def _activate(self, y: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu_(y, 0.2)
        return y if self.clamp is None else y.clamp_(-self.clamp, self.clamp)

    def input_like(self, w_row: torch.Tensor, layout: torch.memory_format) -> torch.Tensor:
        r = self.shape.res // 2 if self.shape.up else self.shape.res
        x = torch.randn(1, self.shape.in_ch, r, r, dtype=w_row.dtype, device=w_row.device)
        return x.contiguous(memory_format=layout)


class FastToRGB:
    """1x1 modulated conv to RGB + bias (one matrix product, NCHW out from either layout), plus the
    skip image upsampled 2x by the FIR filter, one axis at a time (oneDNN's grouped transposed conv
    took 28 ms for the 1024 px image, these eight elementwise passes 4 ms).

    From a channels-last map the product can be taken two ways, and which is faster depends on the
    BLAS and the map (Zen 4 VM, 2 threads: 128 channels at 256 px 13.2 ms as [3, C] @ [C, HW] read
    transposed, 1.7 ms as [HW, C] @ [C, 3] then the 3-row transpose; 32 channels at 1024 px 17.4
    against 25.1 ms), so each map shape is timed both ways on its first call (a few calls, once
    per process)."""

    def __init__(self, layer: ToRGB, in_ch: int, gain_in: float):
        conv = layer.conv
        self.styles = _Styles(conv.modulation, in_ch)
        self.w = (conv.weight[0, :, :in_ch, 0, 0] * conv.scale).contiguous()        # [3, I]
        self.gain_in = gain_in
        self.bias = layer.bias.reshape(-1, 1).contiguous()                          # [3, 1]
        self.bias_row = self.bias.t().contiguous()                                  # [1, 3]
        self._rows_first: dict[tuple[int, int], bool] = {}     # channels-last map shape -> faster way
        self.clamp = layer.clamp
        self.taps: list[float] | None = None
        if hasattr(layer, "upsample"):
            k = layer.upsample.kernel                        # outer(t, t) for the config's 1-D taps t
            t = k.sum(dim=0) / k.sum().sqrt()
            if k.shape != (4, 4) or not torch.allclose(t[:, None] * t[None], k, atol=1e-6):
                raise ValueError(f"the fast path upsamples with a separable 4-tap FIR kernel, got {k.tolist()}")
            self.taps = [float(v) for v in t]

    def __call__(self, x: torch.Tensor, w_row: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        s = self.styles(w_row) * self.gain_in
        _, c, h, w = x.shape
        ws = self.w * s[None, :]
        if x.is_contiguous():
            y = torch.addmm(self.bias, ws, x[0].reshape(c, h * w)).view(1, 3, h, w)
        else:
            y = self._from_rows(x[0].permute(1, 2, 0).reshape(h * w, c), ws).view(1, 3, h, w)
        if self.clamp is not None:
            y.clamp_(-self.clamp, self.clamp)
        if skip is not None:
            assert self.taps is not None                     # a skip image comes with an upsampling layer
            y[0].add_(self._up_axis(self._up_axis(skip[0], 2), 1))
        return y

    def _from_rows(self, rows: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
        """bias + ws @ rows^T as a contiguous [3, HW], for rows [HW, C] (a channels-last map)."""
        def cols_product():
            return torch.addmm(self.bias, ws, rows.t())

        def rows_product():
            return torch.addmm(self.bias_row, rows, ws.t()).t().contiguous()

        key = (rows.shape[0], rows.shape[1])
        if key not in self._rows_first:
            times = {way: min(timed(f) for _ in range(3)) for way, f in ((False, cols_product), (True, rows_product))}
            self._rows_first[key] = times[True] < times[False]
        return rows_product() if self._rows_first[key] else cols_product()

    def _up_axis(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """2x along `dim`, as upfirdn2d(up=2, pad=(2, 1)) with the 4 taps t does: the even outputs
        are t1 x[i] + t3 x[i-1], the odd ones t2 x[i] + t0 x[i+1] (zero beyond the edges)."""
        assert self.taps is not None
        t0, t1, t2, t3 = self.taps
        n = x.shape[dim]
        out = x.new_empty(*x.shape[:dim + 1], 2, *x.shape[dim + 1:])
        even, odd = out.select(dim + 1, 0), out.select(dim + 1, 1)
        torch.mul(x, t1, out=even)
        even.narrow(dim, 1, n - 1).add_(x.narrow(dim, 0, n - 1), alpha=t3)
        torch.mul(x, t2, out=odd)
        odd.narrow(dim, 0, n - 1).add_(x.narrow(dim, 1, n - 1), alpha=t0)
        return out.flatten(dim, dim + 1)


class FastSynthesis:
    """`Generator.synthesis` at batch 1 with prepared layers; one instance serves every
    sub-generator of one model (prepared layers are shared between configurations)."""

    def __init__(self, g: Generator, chooser: FormChooser | None = None, noise: str = "const"):
        if noise not in ("const", "zero"):
            raise ValueError(f"the fast path supports noise 'const' or 'zero', got {noise!r}")
        self.g = g
        self.cfg = g.cfg
        self.chooser = chooser or FormChooser()
        self.noise = noise
        self._convs: dict[tuple, FastStyledConv] = {}
        self._rgbs: dict[tuple, FastToRGB] = {}
        self._input: dict[int, torch.Tensor] = {}

    # ------------------------------------------------------------------ preparation

    def _conv(self, index: int, in_ch: int, out_ch: int, res: int, precision: str = "fp32",
              after: FastStyledConv | None = None) -> FastStyledConv:
        """Styled conv number `index` in W+ order (0 = conv1) at these widths, prepared and tuned;
        `precision`: the lowest it may compute in (below fp32: a preview's); `after`: the layer
        before it, whose output layout its forms are timed on (so a change of layout is paid for
        by the layer that makes it). A layer prepared before keeps its form in every plan."""
        key = (index, in_ch, out_ch, precision)
        if key not in self._convs:
            layer = self.g.conv1 if index == 0 else cast(StyledConv, self.g.convs[index - 1])
            buf = getattr(self.g.noises, f"noise_{index}")
            with torch.inference_mode():
                fc = FastStyledConv(layer, in_ch, out_ch, res, 1.0 if index == 0 else GAIN,
                                    None if self.noise == "zero" else buf, precision)
                w_row = self.g.w_avg[None]
                x = fc.input_like(w_row, torch.contiguous_format if after is None else after.layout)

                prepared: dict[str, tuple] = {}              # every timed form's, until chosen

                def run(form):
                    fc.set_form(form, prepared)
                    return timed(lambda: fc(x, w_row))
                fc.set_form(self.chooser.choose(fc.shape, run), prepared)
            self._convs[key] = fc
        return self._convs[key]

    def _rgb(self, index: int, in_ch: int) -> FastToRGB:
        key = (index, in_ch)
        if key not in self._rgbs:
            layer = self.g.to_rgb1 if index == 0 else cast(ToRGB, self.g.to_rgbs[index - 1])
            with torch.inference_mode():
                self._rgbs[key] = FastToRGB(layer, in_ch, GAIN)
        return self._rgbs[key]

    def _const(self, width: int) -> torch.Tensor:
        if width not in self._input:
            self._input[width] = self.g.input.input[:, :width].detach().contiguous()
        return self._input[width]

    def plan(self, widths: Sequence[int], target: int, precision: str = "fp32") -> list:
        """The prepared layers of one sub-generator: (conv, conv | None, rgb, rows) per level."""
        layers = self._layers(widths, target)
        last = self._conv(*layers[0], precision)
        out: list[tuple[FastStyledConv, FastStyledConv | None, FastToRGB, tuple[int, ...]]] = [
            (last, None, self._rgb(0, widths[1]), (0, 1))]
        for j in range(1, (len(layers) + 1) // 2):
            i = 2 * j - 1
            up = self._conv(*layers[i], precision, after=last)
            last = self._conv(*layers[i + 1], precision, after=up)
            out.append((up, last, self._rgb(j, widths[i + 2]), (i, i + 1, i + 2)))
        return out

    def _layers(self, widths: Sequence[int], target: int) -> list[tuple[int, int, int, int]]:
        """(index, in_ch, out_ch, res) of every styled conv of a sub-generator, in W+ order."""
        levels = [r for r in self.cfg.levels if r <= target]
        out = [(0, widths[0], widths[1], 4)]
        for j, res in enumerate(levels[1:]):
            i = 2 * j + 1
            out += [(i, widths[i], widths[i + 1], res), (i + 1, widths[i + 1], widths[i + 2], res)]
        return out

    def layer_keys(self, channels: ChannelSpec = None, target_res: int | None = None,
                   precision: str = "fp32") -> list[str]:
        """The layer shapes (`LayerShape.key`) of a configuration, without preparing its layers."""
        widths = resolve_channels(self.cfg, channels) or self.cfg.full_channels
        return [LayerShape(index % 2 == 1, i, o, res, precision).key()
                for index, i, o, res in self._layers(widths, self.g.resolve_target_res(target_res))]

    # ------------------------------------------------------------------ running

    def __call__(self, wplus: torch.Tensor, channels: ChannelSpec = None, target_res: int | None = None,
                 reuse: "LastRender | None" = None, precision: str = "fp32") -> torch.Tensor:
        """W+ [1, n_style, D] -> image [1, 3, R, R], as `Generator.synthesis` with the same arguments.

        `reuse`: the previous render of the same session (updated here). Levels that read only W+
        rows equal to that render's are not run again: their output is taken from it.
        `precision`: "fp32", or for a preview "bf16" / "int8": layers may compute in bfloat16 (and
        int8) where that is faster here."""
        assert wplus.shape == (1, self.g.n_style, self.cfg.style_dim), wplus.shape
        widths = resolve_channels(self.cfg, channels) or self.cfg.full_channels
        target = self.g.resolve_target_res(target_res)
        plan = self.plan(widths, target, precision)
        key = (tuple(widths), target, precision)
        start = reuse.levels_valid(wplus, key) if reuse is not None else 0
        skip: torch.Tensor | None
        with torch.inference_mode():
            if start:
                assert reuse is not None                     # levels_valid: 0 without a previous render
                x, skip = reuse.levels[start - 1]
            else:
                x, skip = self._const(widths[0]), None
            outputs = []
            for first, second, rgb, rows in plan[start:]:
                x = first(x, wplus[:, rows[0]])
                if second is not None:                   # every level but the 4x4 one (conv1 only)
                    x = second(x, wplus[:, rows[1]])
                skip = rgb(x, wplus[:, rows[-1]], skip)  # skip is None at the 4x4 level
                outputs.append((x, skip))
            if reuse is not None:
                reuse.store(wplus, key, start, outputs, [p[3] for p in plan])
        assert skip is not None                              # the 4 px level (or a reused one) drew it
        return skip.contiguous()                             # the top levels may draw channels-last

    def precision_used(self, channels: ChannelSpec = None, target_res: int | None = None,
                       precision: str = "int8") -> str:
        """The lowest precision a layer of this configuration computes in when drawn with `precision`
        (prepares its layers; "fp32": no low-precision form won a layer here)."""
        layers = self._prepared(channels, target_res, precision)
        return PRECISIONS[max(PRECISIONS.index(form_precision(c.form or "")) for c in layers)]

    def _prepared(self, channels: ChannelSpec, target_res: int | None, precision: str) -> list[FastStyledConv]:
        """The styled convs a configuration draws with at `precision`, prepared (and tuned) here."""
        widths = resolve_channels(self.cfg, channels) or self.cfg.full_channels
        return [c for first, second, _, _ in self.plan(widths, self.g.resolve_target_res(target_res), precision)
                for c in (first, second) if c is not None]

    def forms(self) -> dict[str, str | None]:
        """Chosen form of every prepared layer, by layer shape (for reports)."""
        return {c.shape.key(): c.form for c in self._convs.values()}

    def release(self, keep: Sequence[tuple[ChannelSpec, int | None, str]]) -> None:
        """Forget the prepared layers no (channels, target_res, precision) of `keep` draws with: each
        precision holds its own copy of a layer's weights, and measuring which precision to serve
        prepares them all. A configuration drawn later is prepared again (its forms are remembered)."""
        used = {id(c) for channels, target_res, precision in keep
                for c in self._prepared(channels, target_res, precision)}
        self._convs = {k: c for k, c in self._convs.items() if id(c) in used}


class LastRender:
    """One session's previous render, level by level, for `FastSynthesis(reuse=)`.

    A slider edit moves a range of W+ rows; levels that read only rows before the first moved one
    come out the same, so the next render starts after them. Levels are kept up to `max_bytes`
    of feature maps (the largest levels of a full render are not worth their memory).
    """

    def __init__(self, max_bytes: int = 64 << 20):
        self.max_bytes = max_bytes
        self.key = None
        self.wplus: torch.Tensor | None = None
        self.levels: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.level_rows: list[tuple] = []
        self.reused = 0                                  # levels taken from the previous render, last call

    def levels_valid(self, wplus: torch.Tensor, key) -> int:
        """How many leading levels of the previous render this W+ would compute identically."""
        self.reused = 0
        if key != self.key or self.wplus is None:
            return 0
        moved = (wplus[0] != self.wplus[0]).any(dim=1).nonzero()
        first = int(moved[0]) if len(moved) else wplus.shape[1]
        n = 0
        while n < len(self.levels) and max(self.level_rows[n]) < first:
            n += 1
        self.reused = n
        return n

    def store(self, wplus: torch.Tensor, key, start: int, outputs: list, level_rows: list) -> None:
        levels = self.levels[:start] + outputs
        kept, total = [], 0
        for x, skip in levels:
            total += x.numel() * x.element_size() + skip.numel() * skip.element_size()
            if total > self.max_bytes:
                break
            kept.append((x, skip))
        self.key, self.wplus, self.levels, self.level_rows = key, wplus.detach().clone(), kept, level_rows
