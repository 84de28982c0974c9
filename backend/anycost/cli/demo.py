"""anycost-backend demo: the whole editing loop, headless, against a real daemon it starts itself.

Projects an image, moves every direction with previews under a latency budget, renders the final,
and writes the PNGs plus a report of what served each step and how long it took.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from ..errors import AnycostError

NAME = "demo"
HELP = "project an image, drag every slider and render the final through a real daemon (headless)"
DEFAULT_IMAGE = Path(__file__).resolve().parents[1] / "data" / "demo-face.png"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="image to edit (default: a shipped portrait)")
    p.add_argument("--out", type=Path, default=Path("anycost-demo"), help="output folder")
    p.add_argument("--model", help="model for the daemon (default: the built-in demo)")
    p.add_argument("--steps", type=int, default=60, help="projection steps")
    p.add_argument("--budget-ms", type=float, default=100.0, help="preview latency budget")
    p.add_argument("--address", help="use a daemon already running there instead of starting one")


def run(args) -> int:
    from PIL import Image

    from .. import protocol as P
    from ..client import Client, RemoteError
    from ..launcher import private_address, start_daemon, wait_ready

    try:
        src = Image.open(args.image).convert("RGB")
    except OSError as e:
        raise AnycostError(f"cannot read {args.image}: {e}") from None
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    address = args.address or private_address("demo")
    proc = None
    if args.address is None:
        serve_args = ["--model", args.model] if args.model else []
        log = open(out / "daemon.log", "w")
        proc = start_daemon(address, serve_args, log_file=log, threads=args.threads)
        say(f"started anycost-backend on {address} (log: {out / 'daemon.log'})")
    report = {"image": str(args.image), "address": address, "steps": {}}
    try:
        t0 = time.monotonic()
        try:
            hello = wait_ready(address, proc)
        except (RuntimeError, TimeoutError) as e:
            raise AnycostError(f"{e}; see {out / 'daemon.log'}") from None
        report["steps"]["daemon_ready_s"] = round(time.monotonic() - t0, 2)
        for w in hello["warnings"]:
            say(f"backend warning: {w}")
        with Client(address) as c:
            model = c.call("models")["models"][0]
            report["model"] = {k: model[k] for k in ("name", "resolution", "untrained")}
            say(f"model {model['name']} ({model['resolution']} px); projecting {args.image.name} ...")
            t0 = time.monotonic()
            image = P.Image(src.width, src.height, "RGB8", src.tobytes()).to_dict()

            def progress(msg):
                d = msg["data"]
                if d.get("preview") or d["step"] == d["steps"]:
                    say(f"  step {d['step']}/{d['steps']} loss {d['loss']:.4f}")

            opened = c.call("open", image=image, steps=args.steps, timeout=3600, on_progress=progress)
            report["steps"]["project_s"] = round(time.monotonic() - t0, 2)
            report["fit"] = opened["metrics"]
            save(opened["reconstruction"], out / "reconstruction.png")
            src.save(out / "input.png")
            sid = opened["session"]
            say(f"projected in {report['steps']['project_s']} s: PSNR {opened['metrics']['psnr']:.2f} dB "
                f"({opened['metrics']['stopped']} after {opened['metrics']['steps']} steps)")

            previews, round_trips = [], []
            for d in opened["directions"]:
                for value in (d["min"], d["max"]):
                    t1 = time.perf_counter()
                    r = c.call("edit", session=sid, values={d["name"]: value}, budget_ms=args.budget_ms)
                    round_trips.append((time.perf_counter() - t1) * 1000)
                    cfg = r["config"]
                    previews.append({"direction": d["name"], "value": value, "ratio": cfg["ratio"],
                                     "resolution": cfg["resolution"], "render_ms": r["render_ms"],
                                     "round_trip_ms": round(round_trips[-1], 2)})
                    save(r["image"], out / f"preview-{slug(d['name'])}-{'minus' if value < 0 else 'plus'}.png")
                say(f"  {d['name']}: previews by {previews[-1]['ratio']:g}x channels at "
                    f"{previews[-1]['resolution']} px, {previews[-1]['render_ms']:.1f} ms")
            report["previews"] = previews
            report["steps"]["edit_round_trip_ms"] = {"median": round(statistics.median(round_trips), 2),
                                                     "max": round(max(round_trips), 2), "n": len(round_trips)}
            first = opened["directions"][0]
            final_values = {first["name"]: first["max"] / 2}
            t1 = time.perf_counter()
            final = c.call("render", session=sid, values=final_values, timeout=600)
            report["steps"]["render_ms"] = round((time.perf_counter() - t1) * 1000, 2)
            report["final"] = {"values": final_values, "render_ms": final["render_ms"]}
            save(final["image"], out / "final.png")
            c.call("close", session=sid)
            if proc is not None:
                c.call("shutdown")
    except RemoteError as e:
        raise AnycostError(f"the backend refused: {e}") from None
    finally:
        if proc is not None:
            try:
                proc.wait(timeout=15)
            except Exception:
                proc.kill()
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    say(f"wrote {out}/ (input, reconstruction, previews, final, report.md)")
    return 0


def save(image: dict, path: Path) -> None:
    from PIL import Image
    mode = "RGBA" if image["mode"] == "RGBA8" else "RGB"
    Image.frombytes(mode, (image["w"], image["h"]), image["data"]).save(path)


def slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower())


def say(text: str) -> None:
    print(text, flush=True)


def markdown(r: dict) -> str:
    s = r["steps"]
    lines = ["# Anycost demo report", "",
             f"Model `{r['model']['name']}` ({r['model']['resolution']} px)"
             + (", **untrained (random weights)**" if r["model"]["untrained"] else "") + f"; image `{r['image']}`.", "",
             "| step | time |", "|---|---|",
             f"| daemon start to ready | {s['daemon_ready_s']} s |",
             f"| projection ({r['fit']['steps']} steps, {r['fit']['stopped']}) | {s['project_s']} s |",
             f"| edit round trip (median / max of {s['edit_round_trip_ms']['n']}) | "
             f"{s['edit_round_trip_ms']['median']} / {s['edit_round_trip_ms']['max']} ms |",
             f"| final render, round trip | {s['render_ms']} ms |", "",
             f"Reconstruction PSNR {r['fit']['psnr']:.2f} dB.", "",
             "| direction | value | sub-generator | render ms | round trip ms |", "|---|---|---|---|---|"]
    for p in r["previews"]:
        lines.append(f"| {p['direction']} | {p['value']:g} | {p['ratio']:g}x @ {p['resolution']} px | "
                     f"{p['render_ms']} | {p['round_trip_ms']} |")
    return "\n".join(lines) + "\n"


