"""Time and memory of CREPS renders against output size, tiled and untiled (`anycost-backend bench
--creps`). Each measurement runs in its own process, so its peak RSS is its own."""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def measure_one(arch: str, size: int, tile: int, threads: int, seed: int = 0) -> dict:
    """Run in a child: build the model, render once at size x size, report time and memory."""
    import torch

    from anycost.models.creps import CrepsGenerator, creps_architecture
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    g = CrepsGenerator(creps_architecture(arch)).eval()
    with torch.no_grad():
        ws = g.map(torch.randn(1, g.cfg.style_dim))
        g.render(ws, (32, 32))                                         # warm-up
        base = _rss_kib()
        t0 = time.perf_counter()
        cache = g.prepare(ws, size, size)
        t_lines = time.perf_counter() - t0
        img = g.render(ws, (size, size), tile=tile, cache=cache)
        seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss                # KiB on Linux
    return {"arch": arch, "size": size, "tile": tile, "seconds": round(seconds, 3),
            "line_branch_s": round(t_lines, 3), "peak_extra_mib": round((peak - base) / 1024, 1),
            "peak_rss_mib": round(peak / 1024, 1), "finite": bool(torch.isfinite(img).all())}


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run(arch: str, sizes: list[int], tile: int, untiled_max: int, threads: int, log=print) -> list[dict]:
    rows = []
    for size in sizes:
        for t in ([tile] if size > tile else []) + ([size] if size <= untiled_max else []):
            r = subprocess.run([sys.executable, "-m", "anycost.bench.creps", arch, str(size), str(t), str(threads)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                rows.append({"arch": arch, "size": size, "tile": t, "error": r.stderr.strip().splitlines()[-1:]})
            else:
                rows.append(json.loads(r.stdout))
            log(json.dumps(rows[-1]))
    return rows


def format_table(rows: list[dict]) -> str:
    lines = ["| output | tile | seconds | line branch s | peak extra RAM (MiB) |", "|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['size']}² | {r['tile']} | failed: {r['error']} | | |")
        else:
            tiled = "untiled" if r["tile"] >= r["size"] else str(r["tile"])
            lines.append(f"| {r['size']}² | {tiled} | {r['seconds']:.2f} | {r['line_branch_s']:.2f} | "
                         f"{r['peak_extra_mib']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    arch, size, tile, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    print(json.dumps(measure_one(arch, size, tile, threads)))
