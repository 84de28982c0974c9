"""What one `adapt` step of a config-f 1024 px generator costs, measured on this machine (a few steps
of the real stage on an untrained `random:ffhq-1024`, whose cost is the trained one's), and its MACs:
the base of the GPU estimate in docs/adapt.md. Prints and saves JSON.

    .venv/bin/python scripts/adapt_cost.py [--steps 3] [--batch 1] [--out runs/adapt-cost.json]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from anycost.core.timing import cpu_name
from anycost.models import architecture
from anycost.models.macs import count_macs
from anycost_train.config import load_config
from anycost_train.trainer import Trainer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--arch", default="ffhq-1024")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--anchor-weight", type=float, default=10.0)
    p.add_argument("--out", type=Path, default=Path("runs/adapt-cost.json"))
    args = p.parse_args()
    cfg = architecture(args.arch)
    with tempfile.TemporaryDirectory() as run:
        tc = load_config(overrides={"stage": "adapt", "init": f"random:{args.arch}", "arch": "custom",
                                    "generator": cfg.to_dict(), "batch": args.batch, "iters": args.steps,
                                    "anchor_weight": args.anchor_weight, "checkpoint_every": 10 ** 9,
                                    "sample_every": 10 ** 9, "log_every": 10 ** 9})
        t = Trainer(tc, Path(run), progress=False)
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            t.train_step()
            times.append(time.perf_counter() - t0)
    # MACs of one image's step, averaged over the configurations the stage samples (uniformly: the
    # four elastic resolutions; channel ratios drawn from 0.25..1): the sub-generator forward and
    # backward (~3x forward), the original's forward, and the anchor's full forward and backward
    full = count_macs(cfg).true
    subs = [count_macs(cfg, r, k).true for r in (1.0, 0.75, 0.5, 0.25) for k in cfg.elastic_resolutions]
    per_image = 3 * statistics.mean(subs) + full + (3 * full if args.anchor_weight > 0 else 0)
    step_s = statistics.median(times[1:] if len(times) > 1 else times)
    out = {"arch": args.arch, "batch": args.batch, "steps": args.steps, "step_seconds": [round(x, 2) for x in times],
           "median_step_s": round(step_s, 2), "img_per_s": round(args.batch / step_s, 4),
           "gmacs_per_image_step": round(per_image / 1e9, 1),
           "effective_gmac_per_s": round(per_image * args.batch / step_s / 1e9, 1),
           "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2),
           "threads": torch.get_num_threads(), "cpu": cpu_name(), "date": time.strftime("%Y-%m-%d %H:%M"),
           "anchor_weight": args.anchor_weight}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
