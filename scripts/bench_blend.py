"""Time of putting a render back into the photo (warp back + soft-mask blend), per preview: what
an aligned session adds to each edit. Prints a table and saves bench-results/blend.json.

    .venv/bin/python scripts/bench_blend.py [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from anycost.editing.faces.blending import mask_rect
from anycost.editing.faces.geometry import Alignment
from anycost.editing.faces.photo import AlignedFace, Blend
from anycost.editing.faces.recipes import Recipe


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--out", type=Path, default=Path("bench-results/blend.json"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for face_px in (128, 256, 512, 1024):             # eye distance ~ face_px / 4 photo pixels
        eye = face_px / 4
        pts = np.array([[1000 - eye / 2, 900], [1000 + eye / 2, 900], [1000, 900 + eye * 0.5],
                        [1000 - eye * 0.4, 900 + eye], [1000 + eye * 0.4, 900 + eye]])
        for model_res, render_res in ((128, 32), (128, 128), (1024, 128), (1024, 256), (1024, 1024)):
            a = Alignment.from_landmarks(pts, Recipe(), model_res)
            rect = mask_rect(a, Recipe(), (0, 0, 3000, 3000))
            photo = np.random.default_rng(0).integers(0, 256, (rect[3], rect[2], 3), dtype=np.uint8)
            t0 = time.perf_counter()
            blend = Blend(AlignedFace(a, Recipe(), rect, [], 0), photo)
            setup_ms = (time.perf_counter() - t0) * 1000
            render = torch.rand(1, 3, render_res, render_res) * 2 - 1
            blend(render)
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                blend(render)
                times.append((time.perf_counter() - t0) * 1000)
            rows.append({"face_px": round(a.face_side), "rect": list(rect[2:]), "model": model_res,
                         "render": render_res, "median_ms": round(statistics.median(times), 2),
                         "first_ms": round(setup_ms, 2)})
            print(f"face {a.face_side:6.0f} px, patch {rect[2]}x{rect[3]}, {model_res} px model, render {render_res}: "
                  f"{rows[-1]['median_ms']:7.2f} ms per preview (mask and grid once: {setup_ms:.1f} ms)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "threads": args.threads,
                                    "date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
