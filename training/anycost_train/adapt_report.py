"""What adapting a model did, measured: each sub-generator's agreement with its own full generator
before and after, how far the full generator moved from the original, and training throughput,
for any number of runs side by side (`anycost-train adapt-report`)."""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from anycost.core.timing import cpu_name
from anycost.editing.consistency import SAMPLES, consistency_figures
from anycost.editing.perceptual import make_perceptual
from anycost.editing.projection import psnr
from anycost.formats.registry import open_model
from anycost.models import Generator

SEED = 4242           # not the release's seed: these latents were not the ones any figure was tuned on


@torch.no_grad()
def drift(original: Generator, adapted: Generator, n: int = SAMPLES, seed: int = SEED, batch: int = 16) -> float:
    """Mean PSNR (dB) of the adapted full generator's image against the original's, same z, stored noise."""
    z = torch.randn(n, original.cfg.style_dim, generator=torch.Generator().manual_seed(seed))
    out = []
    for start in range(0, n, batch):
        a = original(z[start:start + batch], noise="const")
        b = adapted(z[start:start + batch], noise="const")
        out += [psnr(x[None], y[None]) for x, y in zip(b, a, strict=True)]
    return round(statistics.mean(out), 2)


def run_figures(run: Path | None) -> dict:
    """Images per second (median of the logged intervals), iterations, the options of a run folder."""
    if run is None or not (run / "log.jsonl").is_file():
        return {}
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    speeds = [r["img_per_s"] for r in rows if "img_per_s" in r]
    cfg = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}
    return {"img_per_s": round(statistics.median(speeds), 2) if speeds else None,
            "iters": rows[-1].get("step") if rows else None,
            "options": {k: cfg.get(k) for k in ("stage", "batch", "lr", "anchor_weight", "adv_weight",
                                                 "consistency_weight", "channel_mode", "data")
                        if k in cfg and (cfg.get("stage") == "adapt" or k not in ("anchor_weight", "adv_weight"))}}


def measure(original_spec: str, runs: dict[str, tuple[str, Path | None]], n: int = SAMPLES) -> dict:
    """`runs`: label -> (model, its run folder or None)."""
    perceptual = make_perceptual()
    original = open_model(original_spec).generator.eval()
    t0 = time.perf_counter()
    out: dict[str, Any] = {"original": original_spec, "samples": n, "perceptual": perceptual.name, "cpu": cpu_name(),
           "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d"),
           "before": consistency_figures(original, perceptual, n=n, seed=SEED)}
    measured: dict[str, dict] = {}
    for label, (spec, run) in runs.items():
        g = open_model(spec).generator.eval()
        measured[label] = {"model": spec, "consistency": consistency_figures(g, perceptual, n=n, seed=SEED),
                              "full_vs_original_psnr": drift(original, g, n), **run_figures(run)}
    out["runs"] = measured
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def markdown(report: dict) -> str:
    labels = list(report["runs"])
    p = report["perceptual"]
    lines = [f"Original: `{report['original']}`. Each figure: mean over {report['samples']} random latents "
             f"(seed {SEED}), stored noise; PSNR in dB of the sub-generator against the same model's full "
             f"generator, area-downsampled; `{p}` the perceptual distance (lower is better). Measured "
             f"{report['date']} on {report['cpu']}, {report['threads']} thread(s).", "",
             "| sub-generator | before | " + " | ".join(labels) + " |",
             "|---|---|" + "---|" * len(labels)]
    keyed = [{(c["ratio"], c["resolution"]): c for c in r["consistency"]} for r in report["runs"].values()]
    for c in report["before"]:
        key = (c["ratio"], c["resolution"])
        cells = [f"{k[key]['psnr']:.2f} / {k[key][p]:.3f}" if key in k else "–" for k in keyed]
        lines.append(f"| {key[0]:g}× @ {key[1]} px | {c['psnr']:.2f} / {c[p]:.3f} | " + " | ".join(cells) + " |")
    mean = [statistics.mean(x["psnr"] for x in r["consistency"]) for r in report["runs"].values()]
    lines.append(f"| **mean PSNR** | **{statistics.mean(x['psnr'] for x in report['before']):.2f}** | "
                 + " | ".join(f"**{m:.2f}**" for m in mean) + " |")
    lines += ["", "| run | full generator vs the original (PSNR) | images/s | iterations | options |",
              "|---|---|---|---|---|"]
    for label, r in report["runs"].items():
        opts = ", ".join(f"{k} {v}" for k, v in (r.get("options") or {}).items())
        lines.append(f"| {label} | {r['full_vs_original_psnr']:.2f} dB | {r.get('img_per_s', '–')} | "
                     f"{r.get('iters', '–')} | {opts} |")
    return "\n".join(lines) + "\n"
