"""The ways one batch-1 modulated 3x3 convolution can be computed, and the choice between them.

Every form computes the same function (up to float rounding; `tests/unit/test_fast_synthesis.py`):

* stride-1 layers: ``dense`` (oneDNN direct convolution of the modulated weight), ``winograd``
  (NNPACK's Winograd/FFT convolution of the modulated weight: fewer multiplies, more memory
  traffic, so it wins on large feature maps only), ``dense-amod`` (scale the input by the styles,
  convolve with the unmodulated weight, scale the output: no per-call weight pass, wins on tiny
  feature maps with wide weights), ``gemm-amod`` (the same as one matrix product with the
  unfolded input: BLAS reads the stored weight as it is), ``wino2-amod`` / ``wino4-amod`` (our
  own Winograd F(2x2,3x3) / F(4x4,3x3) with activation modulation: the weight is transformed once,
  not per call as NNPACK must, so it also pays on small maps; 2.25x / 4x fewer multiplies).
* upsampling layers (transposed conv, stride 2, then the 4x4 blur): ``transpose-blur`` (as the
  reference: two passes), ``fold-amod`` (the transposed conv as one matrix product of the stored
  weight with the style-scaled input, scattered by col2im: oneDNN's transposed conv is slow on
  small maps), ``polyphase`` / ``polyphase-winograd`` (the blur folded into the
  kernel, 6x6 at the output rate, split into its four 3x3 phases at the input rate: one stride-1
  convolution with 4x the outputs, then a pixel shuffle; no blur pass).
* channels-last twins ``dense-nhwc``, ``dense-amod-nhwc``, ``wino2-amod-nhwc``, ``wino4-amod-nhwc``,
  ``transpose-blur-nhwc``: the same
  computations on feature maps stored channels-last (NHWC). oneDNN's direct convolution works in
  NHWC natively, while an NCHW map is reordered to its blocked layout and back on every call; on
  the large maps of the top levels (32-256 channels at 128-1024 px on one Xeon) that reorder and the
  elementwise passes after it cost as much as the multiplies. A layer converts its input to the
  layout its form reads (`form_layout`), so the maps stay channels-last from the first such layer
  up, and the choice times each form on an input in the layout the layer before it writes. Our
  Winograd forms gain most from it: with the channels innermost, the tile gather copies whole
  channel rows and every product reads unit-stride operands (512->512 at 32 px, 2 threads on the
  Xeon: 7.3 ms against 10.1 ms NCHW and 19.7 ms dense).
* previews only (``LayerShape.precision`` below float32), never the final: ``bf16-amod`` / ``polyphase-bf16`` (the
  stored or polyphase weight in bfloat16, the style-scaled input cast per call: oneDNN's bf16
  kernels, fast where the CPU multiplies bf16 natively, AVX512-BF16 or AMX; about 0.3 % of the
  output's spread per layer) and ``int8-amod`` / ``polyphase-int8`` (the weight quantized once per
  output channel, the input per call over its range: oneDNN's u8 x s8 kernels with a float32
  output, so no output scale has to be known in advance; fast with VNNI and, less so, with AVX2
  alone; about 1.4 % per layer). ``transpose-blur-bf16`` (and its ``-nhwc`` twin) is the
  reference's transposed conv and blur with the stored weight in bfloat16 and the style-scaled
  input cast per call: the polyphase forms multiply 4x as often as the transposed conv (the blur
  widens the kernel), so in bfloat16 they rarely win, while this one halves the time of the
  upsampling layers at 64-256 px where bfloat16 is native (512->256 at 128 px, 2 threads on the
  Zen 4 VM: 28 ms against 59 ms in float32; about 0.33 % per layer). The weight is fixed in these
  forms (activation modulation), so it is converted once per layer and width. ``wino2-bf16`` (and
  ``-nhwc``) is ``wino2-amod`` with its batched product and output transform in bfloat16 (about
  0.5 % per layer; F(4x4, 3x3) in bfloat16 came to 3 %, too far, so it is not offered).

Which form is fastest depends on the layer's size and the CPU, so it is measured on the machine
(`FormChooser`) and remembered per machine and thread count.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from anycost.core import measurements
from anycost.core.timing import machine_key

CONV_FORMS = ("dense", "winograd", "dense-amod", "gemm-amod", "wino2-amod", "wino4-amod",
              "dense-nhwc", "dense-amod-nhwc", "wino2-amod-nhwc", "wino4-amod-nhwc")
UP_FORMS = ("transpose-blur", "fold-amod", "polyphase", "polyphase-winograd", "transpose-blur-nhwc")
LOWP_CONV_FORMS = ("bf16-amod", "int8-amod", "wino2-bf16", "wino2-bf16-nhwc")      # previews only
LOWP_UP_FORMS = ("polyphase-bf16", "polyphase-int8", "transpose-blur-bf16", "transpose-blur-bf16-nhwc")
ALL_FORMS = CONV_FORMS + UP_FORMS + LOWP_CONV_FORMS + LOWP_UP_FORMS
# the lowest precision a preview's layers may compute in, highest first ("int8" allows bf16 forms too)
PRECISIONS = ("fp32", "bf16", "int8")
# raised when a form's implementation changes enough to change which form wins a layer
FORMS_REVISION = 2       # 2: channels-last Winograd in strips
# names this set of forms: files of choices (and latencies measured with them) made before a
# release that adds, renames or reworks a form are measured again
FORMS_ID = hashlib.sha1(f"{','.join(ALL_FORMS)};{FORMS_REVISION}".encode()).hexdigest()[:8]
SLOW_FORM = 4.0      # a form whose first timed call takes this many times the best so far is not timed again


def form_precision(form: str) -> str:
    """The lowest precision a form multiplies in."""
    return "int8" if "int8" in form else "bf16" if "bf16" in form else "fp32"


def form_layout(form: str) -> torch.memory_format:
    """The layout a form reads its input in and writes its output in."""
    return torch.channels_last if form.endswith("-nhwc") else torch.contiguous_format


def winograd_available() -> bool:
    """NNPACK is in this torch build and initialised (asking is what initialises it)."""
    try:
        return bool(torch.backends.nnpack.is_available())
    except (AttributeError, RuntimeError):
        return False


def bf16_available() -> bool:
    """The CPU multiplies bfloat16 natively (elsewhere oneDNN emulates it, 30-300x slower than fp32),
    and neither oneDNN nor ATen was held below the instructions that do it (ONEDNN_MAX_CPU_ISA,
    ATEN_CPU_CAPABILITY: how an AVX2 machine is emulated on this one)."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    held = not any(k in isa for k in ("BF16", "AMX", "AVX10", "ALL")) or \
        torch.backends.cpu.get_cpu_capability() in ("DEFAULT", "AVX2", "ZVECTOR", "VSX")
    return torch.backends.mkldnn.is_available() and not held and \
        any(bool(getattr(cpu, c, lambda: False)()) for c in checks)


def int8_available() -> bool:
    """oneDNN's quantized convolution with a float output is in this torch build."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.onednn, "qconv2d_pointwise")


class Int8Conv3x3:
    """A fixed 3x3 weight [O, I, 3, 3], quantized once (symmetric, per output channel), convolved
    (stride 1, padding 1) with an input quantized per call to uint8 over its own range; float32
    out, NCHW. `in_scale` [I] multiplies the input first (the styles), in the same pass."""

    def __init__(self, w: torch.Tensor):
        o = w.shape[0]
        self.w_scale = (w.abs().amax(dim=(1, 2, 3)) / 127).clamp_min(1e-12).double()
        qw = torch.round(w / self.w_scale.to(w.dtype)[:, None, None, None]).to(torch.int8)
        self.w_zero = torch.zeros(o, dtype=torch.long)
        self.packed = torch.ops.onednn.qconv_prepack(qw, self.w_scale, 1.0, 0, [1, 1], [1, 1], [1, 1], 1, None)

    def __call__(self, x: torch.Tensor, in_scale: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        lo_c, hi_c = torch.aminmax(x[0].reshape(c, -1), dim=1)             # [I]: the range of x * s from
        ends = torch.stack([lo_c * in_scale, hi_c * in_scale])               # each channel's ends
        lo, hi = min(float(ends.min()), 0.0), max(float(ends.max()), 0.0)    # 0 exactly representable
        scale = max(hi - lo, 1e-12) / 255
        zero = int(round(-lo / scale))
        q = torch.addcmul(torch.tensor(float(zero)), x, (in_scale / scale)[None, :, None, None])
        q = q.round_().clamp_(0, 255).to(torch.uint8)
        y = torch.ops.onednn.qconv2d_pointwise(q, scale, zero, self.packed, self.w_scale, self.w_zero, None,
                                               [1, 1], [1, 1], [1, 1], 1, 1.0, 0, torch.float32, "none", [], "")
        return y.contiguous()                            # oneDNN answers channels-last; the next layer reads NCHW


def conv3x3(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, winograd: bool) -> torch.Tensor:
    """Stride-1, padding-1 convolution; `winograd` routes it through NNPACK (fp32, NCHW only)."""
    if winograd:
        if bias is None:
            bias = x.new_zeros(w.shape[0])
        return torch._nnpack_spatial_convolution(x, w, bias, [1, 1])
    return F.conv2d(x, w, bias, padding=1)


def upsample_kernel(w: torch.Tensor, blur: torch.Tensor) -> torch.Tensor:
    """Transposed-conv kernel w [O, I, 3, 3] followed by the blur, as one 6x6 transposed-conv kernel.

    conv_transpose(x, w, stride 2) then the blur (pad 1, 4x4) equals
    conv_transpose(x, C, stride 2, padding 2) with C the full 2-D convolution of w and the blur.
    """
    o, i, k, _ = w.shape
    kb = blur.shape[0]
    c = w.new_zeros(o, i, k + kb - 1, k + kb - 1)
    for a in range(kb):
        for b in range(kb):
            c[:, :, a:a + k, b:b + k] += w * float(blur[a, b])
    return c


def polyphase_weight(c: torch.Tensor) -> torch.Tensor:
    """6x6 transposed-conv kernel (stride 2, padding 2) -> [4*O, I, 3, 3] stride-1 conv weight.

    Output channel o*4 + a*2 + b holds phase (a, b) of output channel o, the order pixel_shuffle(2)
    expects: y[2i+a, 2j+b] = sum over 3x3 neighbours of x, with taps C[a::2, b::2] flipped.
    """
    o, i = c.shape[:2]
    phases = [c[:, :, a::2, b::2].flip([2, 3]) for a in range(2) for b in range(2)]
    return torch.stack(phases, dim=1).reshape(4 * o, i, 3, 3).contiguous()


def _winograd_matrices(m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B^T, G, A^T) of Winograd's minimal filtering F(m x m, 3 x 3) (Lavin & Gray's points)."""
    if m == 2:
        bt = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
        g = [[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]]
        at = [[1, 1, 1, 0], [0, 1, -1, -1]]
    elif m == 4:
        bt = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
              [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
        g = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
             [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]
        at = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
    else:
        raise ValueError(f"Winograd tile {m} is not implemented (2 or 4)")
    f64 = torch.float64
    return torch.tensor(bt, dtype=f64), torch.tensor(g, dtype=f64), torch.tensor(at, dtype=f64)


STRIP_BYTES = 6 << 20    # a channels-last Winograd strip's transformed tiles: stays in cache


class WinogradWeight:
    """A 3x3 weight [O, I, 3, 3] transformed once for F(m x m, 3 x 3), and the stride-1, padding-1
    correlation of a batch-1 map with it, in the map's layout (NCHW or channels-last).

    Three matrix products: the data transform of every tile (B^T d B as one [a*a, a*a] matrix on
    flattened tiles), one batched product per tile position with the transformed weight, the output
    transform (A^T M A). The tiles are gathered by one strided copy of the padded map, in the order
    the batched product reads (BLAS gets contiguous operands and copies nothing per batch).
    Channels-last keeps the channels innermost in every product and works in strips of tile rows
    whose transformed tiles fit in about STRIP_BYTES: each strip is transformed, multiplied and
    finished while in cache, where the whole map's tiles would go through memory three times
    (256->256 at 128 px, 2 threads on the Xeon: 37-45 ms in strips, 84-92 ms whole, 74-84 ms dense)."""

    def __init__(self, w: torch.Tensor, m: int, channels_last: bool = False, products: torch.dtype | None = None):
        bt, g, at = _winograd_matrices(m)
        a = m + 2
        o, i = w.shape[:2]
        u = torch.einsum("pk,oikl,ql->pqoi", g, w.double(), g).reshape(a * a, o, i)     # G w G^T
        # `products`: the dtype of the batched product and the output transform (bfloat16 for a
        # preview's form); the data transform stays in the map's dtype
        low = products or w.dtype
        # NCHW: M [a*a, O, T] = U [a*a, O, I] @ V [a*a, I, T]; NHWC: M [a*a, T, O] = V [a*a, T, I] @ U^T
        self.u = (u.transpose(1, 2) if channels_last else u).to(low).contiguous()
        self.data = torch.kron(bt, bt).to(w.dtype).contiguous()                     # [a*a, a*a]
        self.out = torch.kron(at, at).to(low).contiguous()                          # [m*m, a*a]
        self.m, self.out_ch, self.channels_last = m, o, channels_last

    def __call__(self, x: torch.Tensor, in_scale: torch.Tensor, out_scale: torch.Tensor, bias: torch.Tensor,
                 finish=None) -> torch.Tensor:
        """x [1, I, H, W] -> bias + out_scale * conv(in_scale * x) [1, O, H, W], in x's layout
        (scales and bias per channel). `finish(rows, first_row)`, if given, is applied in place to
        each band of output rows as it is made ([1, O, R, W] views)."""
        m, a, o = self.m, self.m + 2, self.out_ch
        _, c, h, w = x.shape
        th, tw = -(-h // m), -(-w // m)
        hp, wp = th * m + 2, tw * m + 2
        if not self.channels_last:
            xp = x.new_zeros(c, hp, wp)
            torch.mul(x[0], in_scale[:, None, None], out=xp[:, 1:h + 1, 1:w + 1])
            d = xp.as_strided((a, a, c, th, tw), (wp, 1, hp * wp, m * wp, m))           # [tap, tap, I, tile]
            v = (self.data @ d.reshape(a * a, -1)).view(a * a, c, th * tw).to(self.u.dtype)
            mm = torch.bmm(self.u, v)                                                    # [a*a, O, T]
            t = (self.out @ mm.view(a * a, -1)).view(m, m, o, th, tw)
            t = t.permute(2, 3, 0, 4, 1).reshape(1, o, th * m, tw * m)[:, :, :h, :w]
            y = torch.addcmul(bias[:, None, None], t, out_scale[:, None, None])
            return y if finish is None else finish(y, 0)
        xp = x.new_zeros(hp, wp, c)
        torch.mul(x[0].permute(1, 2, 0), in_scale, out=xp[1:h + 1, 1:w + 1])
        y = x.new_empty(th * m, tw * m, o)
        band = max(1, STRIP_BYTES // (a * a * tw * max(c, o) * x.element_size()))      # tile rows per strip
        for r0 in range(0, th, band):
            r = min(band, th - r0)
            d = xp[r0 * m:].as_strided((a, a, r, tw, c), (wp * c, c, m * wp * c, m * c, 1))
            v = (self.data @ d.reshape(a * a, -1)).view(a * a, r * tw, c).to(self.u.dtype)
            mm = torch.bmm(v, self.u)                                                    # [a*a, R*tw, O]
            t = (self.out @ mm.view(a * a, -1)).view(m, m, r, tw, o).permute(2, 0, 3, 1, 4)
            rows = y[r0 * m:(r0 + r) * m]
            torch.addcmul(bias, t, out_scale, out=rows.view(r, m, tw, m, o))
            if finish is not None:
                last = min((r0 + r) * m, h)
                finish(rows[:last - r0 * m, :w].permute(2, 0, 1)[None], r0 * m)
        # [1, O, H, W] with the batch stride of a channels-last tensor: oneDNN reads a map whose batch
        # stride is anything else (as [None] would make it) through a slow path (up-512-512-64 after
        # this layer: 49 ms against 35 ms)
        out = y.view(1, th * m, tw * m, o)[:, :h, :w].permute(0, 3, 1, 2)
        return out if (th * m, tw * m) == (h, w) else out.contiguous(memory_format=torch.channels_last)


@dataclass(frozen=True)
class LayerShape:
    """What the speed of a layer depends on, and the lowest precision it may compute in (one of
    PRECISIONS: below "fp32" for a preview's layers only)."""
    up: bool
    in_ch: int
    out_ch: int
    res: int           # output resolution
    precision: str = "fp32"

    def __post_init__(self):
        assert self.precision in PRECISIONS, self.precision

    def key(self) -> str:
        base = f"{'up' if self.up else 'conv'}-{self.in_ch}-{self.out_ch}-{self.res}"
        return base if self.precision == "fp32" else f"{base}-{self.precision}"


class FormChooser:
    """Times every form of a layer shape once on this machine and keeps the fastest.

    `folder` (optional) keeps the choices across runs, one JSON file per machine and thread
    count; `fixed` forces one form for every layer it applies to (tests, benchmarks)."""

    def __init__(self, folder: Path | None = None, fixed: str | None = None, repeats: int = 3):
        if fixed is not None and fixed not in ALL_FORMS:
            raise ValueError(f"unknown conv form {fixed!r}; choose from {ALL_FORMS}")
        self.fixed = fixed
        self.repeats = repeats
        self.folder = folder
        self.winograd = winograd_available()
        self.bf16 = bf16_available()
        self.int8 = int8_available()
        self._choices: dict[str, str] = {}
        self._timings: dict[str, dict[str, float]] = {}
        self._loaded_key: str | None = None

    def candidates(self, shape: LayerShape) -> tuple[str, ...]:
        """The float32 forms first; a preview's layer may also take one down to its precision."""
        lowest = PRECISIONS.index(shape.precision)
        forms = (UP_FORMS + LOWP_UP_FORMS) if shape.up else (CONV_FORMS + LOWP_CONV_FORMS)
        return tuple(f for f in forms if self.available(f) and PRECISIONS.index(form_precision(f)) <= lowest)

    def available(self, form: str) -> bool:
        return ((self.winograd or "winograd" not in form) and (self.bf16 or "bf16" not in form)
                and (self.int8 or "int8" not in form))

    def choose(self, shape: LayerShape, time_form) -> str:
        """`time_form(form) -> ms` runs the layer once in that form (the caller owns the weights)."""
        cands = self.candidates(shape)
        if self.fixed is not None:
            return self.fixed if self.fixed in cands else cands[0]
        self._load()
        key = shape.key()
        if key not in self._choices:
            # each form warmed up and timed once, then the rounds interleaved: a burst of load from
            # a neighbour (shared VMs) slows every form a little, not one form a lot
            runs: dict[str, list[float]] = {}
            for form in cands:
                time_form(form)                                          # warm-up
                runs[form] = [time_form(form)]
            best = min(r[0] for r in runs.values())
            close = [f for f in cands if runs[f][0] <= SLOW_FORM * best]  # far behind: not worth more calls
            for _ in range(self.repeats - 1):
                for form in close:
                    runs[form].append(time_form(form))
            # the fastest call, not the median: a layer's work is fixed, so what a neighbour adds is
            # the only spread (a median of 3 once kept a form 2.4x slower than the best)
            timings = {f: min(r) for f, r in runs.items()}
            self._timings[key] = timings
            self._choices[key] = min(timings, key=timings.get)  # type: ignore[arg-type]  # every key present
            self._save()
        return self._choices[key]

    def chosen(self) -> dict[str, str]:
        """Every choice made on this machine so far (this process's and the saved ones), by layer shape."""
        self._load()
        return dict(self._choices)

    def report(self) -> dict[str, dict]:
        """Per layer shape: the chosen form and, when measured in this process, every form's ms."""
        return {k: {"form": f, "ms": self._timings.get(k)} for k, f in sorted(self._choices.items())}

    # ------------------------------------------------------------------ persistence

    def _path(self) -> Path | None:
        return self.folder / f"conv-forms-{machine_key()}-{FORMS_ID}.json" if self.folder else None

    def _load(self) -> None:
        path = self._path()
        if path is None or self._loaded_key == path.name:
            return
        self._loaded_key = path.name
        saved = measurements.read(path)
        choices = saved.get("choices") if isinstance(saved, dict) else None
        if isinstance(choices, dict):            # else none or damaged: measured again
            self._choices.update({k: v for k, v in choices.items()
                                  if isinstance(v, str) and v in ALL_FORMS and self.available(v)})

    def _save(self) -> None:
        measurements.write(self._path(), {"machine": machine_key(), "choices": self._choices})
