"""anycost-backend demo: the whole editing loop on a real photo, headless, against a real daemon it
starts itself.

Finds the face in the photo (skimage's astronaut by default: Eileen Collins, a public-domain NASA
portrait), aligns and projects it, drags every slider to both ends with previews under a latency
budget, renders the final, blends it back into the photo, and writes the PNGs, a picture strip and a
report of what served each step and how long it took. Without the face detector (mediapipe) it says
how to install it and edits the photo's aligned face crop shipped beside it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from anycost.core.defaults import DEMO_FACE, DEMO_PHOTO
from anycost.core.errors import AnycostError

NAME = "demo"
HELP = "edit a real photo: find and project its face, drag every slider, render the final (headless, real daemon)"
DEFAULT_IMAGE = DEMO_PHOTO
# the same photo's face, aligned with the demo model's crop rule at 256 px (scripts/make_demo_image.py)
ALIGNED_CROP = DEMO_FACE
FINAL_EDIT = {"smile": 0.67, "age": 0.5}      # the final's sliders, as shares of each one's maximum


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", type=Path, default=DEFAULT_IMAGE,
                   help="photo to edit (default: the astronaut, a public-domain NASA portrait)")
    p.add_argument("--out", type=Path, default=Path("anycost-demo"), help="output folder")
    p.add_argument("--model", help="model for the daemon (default: the built-in demo)")
    p.add_argument("--align", choices=["auto", "none"], default="auto",
                   help="auto: find and align the face (needs mediapipe); none: project the image as it is")
    p.add_argument("--steps", type=int, default=100, help="projection steps")
    p.add_argument("--budget-ms", type=float, default=100.0, help="preview latency budget")
    p.add_argument("--address", help="use a daemon already running there instead of starting one")


def faces_available() -> bool:
    try:
        import mediapipe  # noqa: F401  (the import is the test: a broken install fails here too)
    except Exception:
        return False
    return True


def run(args) -> int:
    from PIL import Image

    from anycost.protocol import messages as P
    from anycost.protocol.client import Client
    from anycost.protocol.messages import BackendError
    from anycost.protocol.spawn import private_address, start_backend

    image_path, align = args.image, args.align
    if align == "auto" and not faces_available():
        say("face detection needs mediapipe, which is not installed: pip install 'anycost-editor[faces]' "
            "(Python 3.8-3.12)")
        if image_path == DEFAULT_IMAGE:
            image_path, align = ALIGNED_CROP, "none"
            say(f"editing the photo's aligned face crop instead: {ALIGNED_CROP.name}")
        else:
            raise AnycostError("cannot align a face without mediapipe: install it, or pass --align none")
    try:
        src = Image.open(image_path).convert("RGB")
    except OSError as e:
        raise AnycostError(f"cannot read {image_path}: {e}") from None
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    address = args.address or private_address("demo")
    proc = None
    if args.address is None:
        serve_args = ["--model", args.model] if args.model else []
        log = open(out / "daemon.log", "wb")
        proc = start_backend(address, serve_args, log=log, threads=args.threads)
        say(f"started anycost-backend on {address} (log: {out / 'daemon.log'})")
    report = {"image": str(image_path), "align": align, "address": address, "steps": {}}
    strip = []
    try:
        t0 = time.monotonic()
        try:
            with Client(address) as c:
                hello = c.wait_ready(proc=proc)
        except BackendError as e:
            raise AnycostError(f"{e.message}; see {out / 'daemon.log'}") from None
        report["steps"]["daemon_ready_s"] = round(time.monotonic() - t0, 2)
        for w in hello.warnings:
            say(f"backend warning: {w}")
        with Client(address) as c:
            model = P.ModelsResult.from_dict(c.call("models")).models[0]
            report["model"] = {"name": model.name, "resolution": model.resolution, "untrained": model.untrained,
                               "licence": model.licence}
            say(f"model {model.name} ({model.resolution} px); projecting {image_path.name} ...")
            t0 = time.monotonic()
            image = P.Image(src.width, src.height, "RGB8", src.tobytes()).to_dict()

            def progress(msg):
                d = msg["data"]
                if d.get("preview") or d["step"] == d["steps"]:
                    say(f"  step {d['step']}/{d['steps']} loss {d['loss']:.4f}")

            opened = c.call("open", image=image, steps=args.steps, align=align, timeout=3600, on_progress=progress)
            report["steps"]["project_s"] = round(time.monotonic() - t0, 2)
            report["fit"] = opened["metrics"]
            report["region"] = opened["region"]
            if opened.get("alignment"):
                a = opened["alignment"]
                report["face"] = {"faces": len(a["faces"]), "face_px": a["face_px"], "roll": a["roll"]}
                say(f"found {len(a['faces'])} face(s); the face is {a['face_px']:.0f} px wide in the photo")
            x, y, w, h = opened["region"]
            src.save(out / "input.png")
            strip.append(("photo", src.crop((x, y, x + w, y + h))))
            strip.append(("reconstruction", save(opened["reconstruction"], out / "reconstruction.png")))
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
                                     "resolution": cfg["resolution"], "precision": cfg.get("precision", "fp32"),
                                     "render_ms": r["render_ms"],
                                     "round_trip_ms": round(round_trips[-1], 2)})
                    img = save(r["image"], out / f"preview-{slug(d['name'])}-{'minus' if value < 0 else 'plus'}.png")
                    strip.append((f"{d['name']} {value:+g}", img))
                last = previews[-1]
                say(f"  {d['name']}: previews by {last['ratio']:g}x channels at {last['resolution']} px "
                    f"({last['precision']}), {last['render_ms']:.1f} ms")
            report["previews"] = previews
            report["steps"]["edit_round_trip_ms"] = {"median": round(statistics.median(round_trips), 2),
                                                     "max": round(max(round_trips), 2), "n": len(round_trips)}
            by_name = {d["name"]: d for d in opened["directions"]}
            final_values = {k: round(share * by_name[k]["max"], 2) for k, share in FINAL_EDIT.items() if k in by_name}
            if not final_values and opened["directions"]:
                first = opened["directions"][0]
                final_values = {first["name"]: first["max"] / 2}
            t1 = time.perf_counter()
            final = c.call("render", session=sid, values=final_values, timeout=600)
            report["steps"]["render_ms"] = round((time.perf_counter() - t1) * 1000, 2)
            report["final"] = {"values": final_values, "render_ms": final["render_ms"]}
            face = save(final["image"], out / "final.png")
            strip.append(("final", face))          # its slider values: report.md
            photo = src.copy()               # the final back in the whole photo, as Apply does in an editor
            photo.paste(face.resize((w, h)), (x, y))
            photo.save(out / "final-photo.png")
            c.call("close", session=sid)
            if proc is not None:
                c.call("shutdown")
    except BackendError as e:
        raise AnycostError(f"the backend refused: {e}") from None
    finally:
        if proc is not None:
            try:
                proc.wait(timeout=15)
            except Exception:
                proc.kill()
    picture_strip(strip).save(out / "strip.png")
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    say(f"wrote {out}/ (input, reconstruction, previews, final, final-photo, strip.png, report.md)")
    return 0


def picture_strip(tiles: list, size: int = 128, cols: int = 8):
    """Labelled tiles: the photo's face region, the reconstruction, each slider at its ends, the final."""
    from PIL import Image, ImageDraw
    label_h = 14
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * size, rows * (size + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, img) in enumerate(tiles):
        x, y = i % cols * size, i // cols * (size + label_h)
        # PIL sets its filter names (Image.LANCZOS, ...) in a loop: mypy cannot see them
        sheet.paste(img.convert("RGB").resize((size, size), Image.LANCZOS), (x, y))  # type: ignore[attr-defined]
        draw.text((x + 2, y + size + 1), label[:24], fill="black")
    return sheet


def save(image: dict, path: Path):
    from PIL import Image
    mode = "RGBA" if image["mode"] == "RGBA8" else "RGB"
    img = Image.frombytes(mode, (image["w"], image["h"]), image["data"])
    img.save(path)
    return img


def slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower())


def say(text: str) -> None:
    print(text, flush=True)


def markdown(r: dict) -> str:
    s = r["steps"]
    lines = ["# Anycost demo report", "",
             f"Model `{r['model']['name']}` ({r['model']['resolution']} px)"
             + (", **untrained (random weights)**" if r["model"]["untrained"] else "") + f"; image `{r['image']}`"
             + (" (face found and aligned)" if r.get("face") else " (as it is, not aligned)") + ".", "",
             "Photo, reconstruction, each slider at its ends (the previews as a user sees them while dragging) "
             "and the final (`final-photo.png` is the whole photo with it blended in):", "",
             "![strip](strip.png)", "",
             "| step | time |", "|---|---|",
             f"| daemon start to ready | {s['daemon_ready_s']} s |",
             f"| projection ({r['fit']['steps']} steps, {r['fit']['stopped']}) | {s['project_s']} s |",
             f"| edit round trip (median / max of {s['edit_round_trip_ms']['n']}) | "
             f"{s['edit_round_trip_ms']['median']} / {s['edit_round_trip_ms']['max']} ms |",
             f"| final render, round trip | {s['render_ms']} ms |", "",
             "Final: " + ", ".join(f"{k} {v:+g}" for k, v in r["final"]["values"].items()) + ".", "",
             f"Reconstruction PSNR {r['fit']['psnr']:.2f} dB.", ""]
    if r["model"].get("licence"):
        lines += [f"Model licence: {r['model']['licence']}", ""]
    lines += ["| direction | value | sub-generator | render ms | round trip ms |", "|---|---|---|---|---|"]
    for p in r["previews"]:
        lines.append(f"| {p['direction']} | {p['value']:g} | {p['ratio']:g}x @ {p['resolution']} px, "
                     f"{p.get('precision', 'fp32')} | "
                     f"{p['render_ms']} | {p['round_trip_ms']} |")
    return "\n".join(lines) + "\n"


