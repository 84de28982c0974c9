"""Is int8 worth a preview path here? Single 3x3 convolutions at the widths of config-f's 0.25x
sub-generator (the ffhq-1024 preview), fp32 against FBGEMM/x86 int8 (weights per output channel,
quantized once; activations per tensor, quantized per call), batch 1, one warm-up then N timed
calls, median; and each int8 output's error against fp32 (RMS relative to the output's standard
deviation), on activations shaped like a modulated feature map (a leaky-ReLU'd normal).

    .venv/bin/python scripts/bench_int8_conv.py --threads 2 [--out bench-results/int8-conv-2t.json]

An exploration for issue #25 (previews past the fp32 ceiling), not a path the daemon uses.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from anycost.core.timing import timed

# (in channels, out channels, resolution) of config-f at ratio 0.25, the levels that carry the MACs
SHAPES = [(128, 128, 16), (128, 128, 32), (128, 128, 64), (128, 64, 128), (64, 64, 128)]


def median_ms(fn, n: int) -> float:
    """One warm-up call, then the median of `n` timed ones."""
    fn()
    return statistics.median(timed(fn) for _ in range(n))


def rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y - ref).pow(2).mean().sqrt() / ref.std())


def measure(cin: int, cout: int, res: int, n: int, gen: torch.Generator) -> dict:
    x = F.leaky_relu(torch.randn(1, cin, res, res, generator=gen), 0.2)
    w = torch.randn(cout, cin, 3, 3, generator=gen) / (3 * cin ** 0.5)
    ref = F.conv2d(x, w, padding=1)
    scale_w = w.abs().amax(dim=(1, 2, 3)) / 127
    qw = torch.quantize_per_channel(w, scale_w, torch.zeros(cout, dtype=torch.long), 0, torch.qint8)
    packed = torch.ops.quantized.conv2d_prepack(qw, None, [1, 1], [1, 1], [1, 1], 1)
    lo, hi = float(x.min()), float(x.max())
    sx = (hi - lo) / 255
    zx = int(round(-lo / sx))
    osc = float(ref.abs().max()) * 2 / 255          # an output scale known in advance (static)

    def static():
        q = torch.quantize_per_tensor(x, sx, zx, torch.quint8)
        return torch.ops.quantized.conv2d(q, packed, osc, 128).dequantize()

    def dynamic():
        return torch.ops.quantized.conv2d_dynamic(x, packed, True)
    return {"in": cin, "out": cout, "res": res, "fp32_ms": median_ms(lambda: F.conv2d(x, w, padding=1), n),
            "int8_static_ms": median_ms(static, n), "int8_static_rel_err": rel_err(static(), ref),
            "int8_dynamic_ms": median_ms(dynamic, n), "int8_dynamic_rel_err": rel_err(dynamic(), ref)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    warnings.filterwarnings("ignore")              # torch's deprecation notice of quantized tensors
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(0)
    rows = []
    with torch.inference_mode():
        for cin, cout, res in SHAPES:
            row = measure(cin, cout, res, a.n, gen)
            rows.append(row)
            print(f"{cin}->{cout} @{res}: fp32 {row['fp32_ms']:.2f} ms; int8 static {row['int8_static_ms']:.2f} ms "
                  f"(err {row['int8_static_rel_err']:.4f}); int8 dynamic {row['int8_dynamic_ms']:.2f} ms "
                  f"(err {row['int8_dynamic_rel_err']:.4f})")
    out = a.out or Path("bench-results") / f"int8-conv-{a.threads}t.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"threads": a.threads, "torch": torch.__version__, "engine":
                               torch.backends.quantized.engine, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                               "rows": rows}, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
