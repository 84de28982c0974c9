"""Our fast path against the official Anycost GAN generator code, timed in the same run.

The official code (github.com/mit-han-lab/anycost-gan, `models/` and `cuda_op/`; the project keeps
a copy in ../shared/reference/anycost-gan) is imported from a folder given by the user, never
shipped. Each implementation runs in a child process of its own (`Worker`), all with the same
weights (made by the official constructor from one seed, converted to ours by the official-file
loader) and the same W+ (the official mapping of one seeded z):

- `ours`: `inference.fast.FastSynthesis`, what the daemon draws with, under the daemon's allocator
  settings (`core.memory.keep_freed_memory`), in float32 (as every final is drawn);
- `ours-preview`: the same process drawing the configuration as the daemon serves it as a preview:
  in the lowest precision (int8, else bfloat16, else float32) whose layers measured faster and
  whose image measured >= 40 dB from float32 (`editing.consistency.precision_figures`, at the
  worker's start, as the daemon measures it), compared with `ours` (PSNR, the perceptual distance); the full
  configuration is the final, float32 in both;
- `official`: the official generator under the same allocator settings;
- `official-as-shipped`: the official generator in a process as a user starts it (glibc defaults).

Allocator settings are process-wide and cannot be undone, hence the processes. The parent sends
"time this configuration" to one worker at a time, round-robin over configurations and workers
(one warm-up call each first), so a slow patch of a shared machine spreads over all of them; only
the asked worker computes while it is timed. Medians are reported. Ours and the official worker
also draw every configuration once for the agreement check (PSNR and largest difference, images
in [-1, 1]).
"""
from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from anycost.editing.perceptual import make_perceptual

IMPLS = ("ours", "ours-preview", "official", "official-as-shipped")
PROCESSES = ("ours", "official", "official-as-shipped")      # ours-preview is asked of the ours process
OFFICIAL_FILES = ("models/anycost_gan.py", "models/dynamic_channel.py", "cuda_op/op_native.py")


def check_official_dir(folder: Path) -> Path:
    """`folder` if it holds the official generator code, else a clear error."""
    from anycost.core.errors import AnycostError
    missing = [f for f in OFFICIAL_FILES if not (folder / f).is_file()]
    if missing:
        raise AnycostError(f"{folder} does not hold the official Anycost GAN code (missing {', '.join(missing)}); "
                           "give the folder with models/ and cuda_op/ of github.com/mit-han-lab/anycost-gan")
    return folder.resolve()


def default_official_dir() -> Path | None:
    """The copy beside a source checkout (../shared/reference/anycost-gan), if there is one."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "reference" / "anycost-gan"
        if (candidate / OFFICIAL_FILES[0]).is_file():
            return candidate
    return None


class Worker:
    """One implementation in a child process, answering one JSON request per line."""

    def __init__(self, impl: str, official_dir: Path, folder: Path, threads: int, calibration: Path | None):
        assert impl in PROCESSES, impl
        self.impl = impl
        env = dict(os.environ, FORCE_NATIVE="1")       # the official code's switch: no CUDA extension build
        cmd = [sys.executable, "-m", "anycost.bench.official", impl, str(official_dir), str(folder), str(threads),
               str(calibration or "")]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.ready = self._read()

    def _read(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise RuntimeError(f"the {self.impl} worker ended (exit code {code}); its error is above")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.impl} worker: {reply['error']}")
        return reply

    def ask(self, **request) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def time(self, ratio: float, res: int, preview: bool = False) -> float:
        return self.ask(op="time", ratio=ratio, res=res, preview=preview)["ms"]

    def draw(self, ratio: float, res: int, out: Path, preview: bool = False) -> np.ndarray:
        self.ask(op="draw", ratio=ratio, res=res, out=str(out), preview=preview)
        return np.load(out)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.ask(op="quit")
            except (RuntimeError, BrokenPipeError, json.JSONDecodeError):
                pass
            self.proc.wait(timeout=30)


def agreement(ours: np.ndarray, theirs: np.ndarray) -> dict:
    """PSNR (dB, images in [-1, 1], peak-to-peak 2) and the largest absolute difference."""
    diff = ours.astype(np.float64) - theirs.astype(np.float64)
    mse = float(np.mean(diff ** 2))
    psnr = math.inf if mse == 0 else 10 * math.log10(4.0 / mse)
    return {"psnr_db": psnr, "max_abs_diff": float(np.abs(diff).max())}


def perceptual_distance(perceptual, a: np.ndarray, b: np.ndarray) -> float:
    import torch
    with torch.inference_mode():
        return float(perceptual.distance(torch.from_numpy(a), torch.from_numpy(b))[0])


def run_against_official(official_dir: Path, resolution: int, channel_multiplier: int, configs, repeat: int,
                         threads: int, calibration: Path | None = None, seed: int = 0,
                         log=None) -> dict[str, Any]:
    """Every configuration (ratio, resolution) timed in each of IMPLS, interleaved; the agreement
    of our image with the official one."""
    say = log or (lambda m: None)
    full = (1.0, resolution)
    perceptual = make_perceptual()

    def timer(impl: str, c) -> float:       # the full configuration is a final: float32 in ours-preview too
        if impl == "ours-preview":
            return workers["ours"].time(c[0], c[1], preview=c != full)
        return workers[impl].time(c[0], c[1])
    with tempfile.TemporaryDirectory(prefix="anycost-official-") as tmp:
        folder = Path(tmp)
        (folder / "spec.json").write_text(json.dumps({"resolution": resolution, "channel_multiplier":
                                                      channel_multiplier, "seed": seed,
                                                      "previews": [list(c) for c in configs if c != full]}))
        workers: dict[str, Worker] = {}
        try:
            for impl in ("official", "ours", "official-as-shipped"):   # the official worker makes the weights
                workers[impl] = Worker(impl, official_dir, folder, threads, calibration)
                say(f"{impl}: ready ({workers[impl].ready.get('note', '')})")
            times: dict[tuple, list[float]] = {(i, c): [] for c in configs for i in IMPLS}
            t0 = time.perf_counter()
            for c in configs:
                for impl in IMPLS:
                    timer(impl, c)                                  # warm-up: allocator, caches, our form choice
            say(f"warm-up {time.perf_counter() - t0:.1f} s")
            for k in range(repeat):
                for c in configs:
                    for impl in IMPLS:
                        times[(impl, c)].append(timer(impl, c))
                say(f"round {k + 1}/{repeat} done")
            rows = []
            precisions = workers["ours"].ready["precisions"]
            for c in configs:
                row: dict[str, Any] = {"ratio": c[0], "resolution": c[1]}
                for impl in IMPLS:
                    row[f"{impl}_median_ms"] = statistics.median(times[(impl, c)])
                    row[f"{impl}_min_ms"] = min(times[(impl, c)])
                    row[f"{impl}_ms"] = times[(impl, c)]
                row["speedup_same_allocator"] = row["official_median_ms"] / row["ours_median_ms"]
                row["speedup_vs_as_shipped"] = row["official-as-shipped_median_ms"] / row["ours_median_ms"]
                row["preview_speedup_same_allocator"] = row["official_median_ms"] / row["ours-preview_median_ms"]
                ours = workers["ours"].draw(c[0], c[1], folder / "ours.npy")
                row["ours_vs_official"] = agreement(ours, workers["official"].draw(c[0], c[1], folder / "official.npy"))
                low = workers["ours"].draw(c[0], c[1], folder / "preview.npy", preview=c != full)
                row["preview_vs_ours"] = dict(agreement(low, ours),
                                              perceptual=perceptual_distance(perceptual, low, ours))
                row["preview_precision"] = precisions.get(f"{c[0]:g}x@{c[1]}", {"used": "fp32"})
                rows.append(row)
            notes = {impl: w.ready for impl, w in workers.items()}
        finally:
            for w in workers.values():
                w.close()
    return {"rows": rows, "workers": notes, "repeat": repeat, "threads": threads, "perceptual": perceptual.name,
            "architecture": {"resolution": resolution, "channel_multiplier": channel_multiplier, "seed": seed}}


def format_table(result: dict) -> str:
    lines = ["| config | ours ms | official ms (same allocator) | speed-up | official ms (as shipped) | speed-up | "
             "PSNR dB ours vs official | max diff | ours as a preview ms | precision | speed-up | PSNR dB vs ours "
             f"| {result['perceptual']} vs ours |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        a, lo = r["ours_vs_official"], r["preview_vs_ours"]
        lines.append(f"| {r['ratio']:g}x@{r['resolution']} | {r['ours_median_ms']:.1f} | "
                     f"{r['official_median_ms']:.1f} | {r['speedup_same_allocator']:.2f}x | "
                     f"{r['official-as-shipped_median_ms']:.1f} | {r['speedup_vs_as_shipped']:.2f}x | "
                     f"{a['psnr_db']:.1f} | {a['max_abs_diff']:.1e} | {r['ours-preview_median_ms']:.1f} | "
                     f"{r['preview_precision']['used']} | {r['preview_speedup_same_allocator']:.2f}x | "
                     f"{lo['psnr_db']:.1f} | {lo['perceptual']:.4f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the worker process

def _official_generator(official_dir: Path, spec: dict):
    """The official Generator with the spec's seeded weights, and its sub-generator switch."""
    sys.path.insert(0, str(official_dir))
    import types

    import torch
    if not (official_dir / "utils").is_dir():
        # models/__init__.py imports the repository's utils/ for its download helper, which timing never
        # calls; the copy of models/ and cuda_op/ alone lacks it, so a stand-in that refuses downloads
        utils, torch_utils = types.ModuleType("utils"), types.ModuleType("utils.torch_utils")

        def no_downloads(*a, **k):
            raise RuntimeError("downloads are not part of the benchmark")
        torch_utils.safe_load_state_dict_from_url = no_downloads   # type: ignore[attr-defined]
        utils.torch_utils = torch_utils                             # type: ignore[attr-defined]
        sys.modules.update({"utils": utils, "utils.torch_utils": torch_utils})
    from models.anycost_gan import Generator
    from models.dynamic_channel import reset_generator, set_uniform_channel_ratio
    torch.manual_seed(spec["seed"])
    g = Generator(spec["resolution"], channel_multiplier=spec["channel_multiplier"]).eval()

    def configure(ratio: float, res: int) -> None:
        reset_generator(g)
        set_uniform_channel_ratio(g, ratio)
        g.target_res = res
    return g, configure


def _worker(impl: str, official_dir: Path, folder: Path, threads: int, calibration: str, out) -> None:
    import torch
    torch.set_num_threads(threads)
    note: dict[str, Any] = {"allocator": "glibc defaults"}
    precisions: dict[str, dict] = {}          # ours: how each preview configuration is served
    if impl != "official-as-shipped":
        from anycost.core.memory import keep_freed_memory
        note["allocator"] = "kept freed memory (the daemon's)" if keep_freed_memory() else "glibc defaults (not glibc)"
    spec = json.loads((folder / "spec.json").read_text())
    weights, wplus_file = folder / "weights.pt", folder / "wplus.pt"
    if impl == "ours":
        from anycost.formats.checkpoints import generator_from_state_dict
        from anycost.inference.conv_forms import FormChooser
        from anycost.inference.fast import FastSynthesis
        g = generator_from_state_dict(torch.load(weights, weights_only=True), "official weights")
        from anycost.editing.consistency import precision_figures
        fast = FastSynthesis(g, FormChooser(Path(calibration)) if calibration else None)
        wplus = torch.load(wplus_file, weights_only=True)
        served = precision_figures(g, fast, [tuple(c) for c in spec["previews"]])   # measured afresh
        precisions = {f"{r:g}x@{k}": v for (r, k), v in served.items()}

        def draw(ratio, res, preview=False):
            precision = served.get((ratio, res), {}).get("precision", "fp32") if preview else "fp32"
            return fast(wplus, channels=ratio, target_res=res, precision=precision)
    else:
        g, configure = _official_generator(official_dir, spec)
        if impl == "official":                          # the first worker: the weights and W+ for all
            with torch.inference_mode():
                z = torch.randn(1, 1, g.style_dim, generator=torch.Generator().manual_seed(spec["seed"] + 1))
                wplus = g.get_style(z).repeat(1, g.n_style, 1).contiguous()
            torch.save(g.state_dict(), weights)
            torch.save(wplus, wplus_file)
        else:
            g.load_state_dict(torch.load(weights, weights_only=True))
            wplus = torch.load(wplus_file, weights_only=True)

        def draw(ratio, res, preview=False):
            configure(ratio, res)
            return g(wplus, input_is_style=True, randomize_noise=False)[0]
    note["threads"] = torch.get_num_threads()

    def reply(obj) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()
    reply({"ready": True, "note": ", ".join(f"{k}: {v}" for k, v in note.items()), "precisions": precisions})
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "quit":
            reply({"ok": True})
            return
        with torch.inference_mode():
            t0 = time.perf_counter()
            img = draw(req["ratio"], req["res"], req.get("preview", False))
            ms = (time.perf_counter() - t0) * 1000
        if req["op"] == "draw":
            np.save(req["out"], img.float().numpy())
        reply({"ms": ms})


if __name__ == "__main__":
    # the protocol goes to the original stdout; anything the code prints goes to stderr
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        _worker(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5], protocol)
    except Exception as e:          # reported to the parent, which raises it
        protocol.write(json.dumps({"error": f"{type(e).__name__}: {e}"}) + "\n")
        protocol.flush()
        raise
