"""Speed options measured and not kept for the fast path (docs/benchmarks.md, "What did not win").

Times, at the current thread count, on representative 3x3 layers of config-f: fp32 NCHW (what the
fast path's dense form runs), fp32 channels_last, bf16 (oneDNN; emulated without AVX512-BF16/AMX);
and torch.compile of the whole fast path for one sub-generator (start-up cost and steady time).
Prints a table and saves JSON.

    .venv/bin/python scripts/bench_alternatives.py --threads 1 --out bench-results/alternatives-1t.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

LAYERS = [(512, 16), (512, 32), (256, 128), (64, 512), (32, 1024)]     # (channels, resolution)
BF16_LAYERS = 2          # bf16 without hardware support is ~100x slower: timed on the first layers only


def median_ms(fn, repeat: int) -> float:
    fn()
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    return statistics.median(ts)


def conv_layouts(repeat: int) -> list[dict]:
    rows = []
    for k, (c, r) in enumerate(LAYERS):
        x, w = torch.randn(1, c, r, r), torch.randn(c, c, 3, 3) / (3 * c ** 0.5)
        ref = F.conv2d(x, w, padding=1)
        xl = x.contiguous(memory_format=torch.channels_last)
        xb, wb = x.bfloat16(), w.bfloat16()
        # the lambdas (noqa: B023) are called by median_ms at once, inside this iteration
        row = {"channels": c, "resolution": r,
               "fp32_nchw_ms": median_ms(lambda: F.conv2d(x, w, padding=1), repeat),  # noqa: B023
               "fp32_channels_last_ms": median_ms(lambda: F.conv2d(xl, w, padding=1), repeat),  # noqa: B023
               "bf16_ms": None, "bf16_max_rel_error": None}
        if k < BF16_LAYERS:
            row["bf16_ms"] = median_ms(lambda: F.conv2d(xb, wb, padding=1), min(repeat, 3))  # noqa: B023
            row["bf16_max_rel_error"] = ((F.conv2d(xb, wb, padding=1).float() - ref).abs().max()
                                         / ref.abs().max()).item()
        rows.append(row)
        print(" | ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
    return rows


def compiled_fast_path(arch: str, ratio: float, res: int, repeat: int) -> dict:
    from anycost.inference.conv_forms import FormChooser
    from anycost.inference.fast import FastSynthesis
    from anycost.models import Generator, architecture
    torch.manual_seed(0)
    g = Generator(architecture(arch)).eval()
    fast = FastSynthesis(g, FormChooser())
    with torch.inference_mode():
        w = g.latent_to_wplus(torch.randn(1, g.cfg.style_dim))
        eager = median_ms(lambda: fast(w, ratio, res), repeat)
        out = {"arch": arch, "ratio": ratio, "resolution": res, "eager_ms": eager}
        try:
            compiled = torch.compile(lambda wp: fast(wp, ratio, res), dynamic=False)
            t0 = time.perf_counter()
            compiled(w)
            out["compile_s"] = time.perf_counter() - t0
            out["compiled_ms"] = median_ms(lambda: compiled(w), repeat)
            out["compiled_max_error"] = (compiled(w) - fast(w, ratio, res)).abs().max().item()
        except Exception as e:                       # report, do not hide, why it did not run
            out["compile_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    print(out, flush=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("bench-results/alternatives.json"))
    p.add_argument("--compile", default="demo-128:1:128,ffhq-1024:0.25:128",
                   help="arch:ratio:res for the torch.compile trial ('' to skip)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    result = {"threads": args.threads, "torch": torch.__version__,
              "cpu_capability": torch.backends.cpu.get_cpu_capability(), "layers": conv_layouts(args.repeat),
              "compile": [compiled_fast_path(a, float(r), int(k), args.repeat)
                          for a, r, k in (s.split(":") for s in args.compile.split(",") if s)]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
