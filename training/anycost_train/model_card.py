"""A model's page under docs/: the paper's grid, a slider strip per attribute, projections of held-out
faces and the consistency table (with the ablations measured at release), from the model file alone."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
from PIL import Image

from anycost.bench import cpu_name
from anycost.checkpoints import load_model
from anycost.editing import apply_edit, from_model_file
from anycost.imaging import grid, to_pil
from anycost.models import TRAINED_RATIOS
from anycost.perceptual import make_perceptual
from anycost.projection import ProjectionOptions, downsample, initial_wplus, project, psnr

from .faces import ATTRIBUTES, faces_of_latents
from .report import HELD_OUT_SEED

GRID_SEEDS = (3, 7, 11)
SLIDER_SEEDS = (5, 9)
SLIDER_STEPS = 7
PREVIEW = (0.5, 64)          # the preview configuration shown under each slider strip
TRUNCATION = 0.7


def _tile(img: torch.Tensor, size: int) -> Image.Image:
    # nearest neighbour, so a 16 px output looks like 16 px, not like a blurred 128 px one
    return to_pil(img).resize((size, size), Image.NEAREST)


def _seed_wplus(g, seed: int) -> torch.Tensor:
    z = torch.randn(1, g.cfg.style_dim, generator=torch.Generator().manual_seed(seed))
    return g.latent_to_wplus(z, truncation=TRUNCATION)


@torch.no_grad()
def paper_grid(g, seeds=GRID_SEEDS) -> Image.Image:
    """Per seed: rows channel ratio 1, .75, .5, .25; columns the four resolutions (largest first)."""
    size, blocks = g.cfg.resolution, []
    for seed in seeds:
        wplus = _seed_wplus(g, seed)
        tiles = [_tile(g.synthesis(wplus, channels=r, target_res=k)[0], size)
                 for r in TRAINED_RATIOS for k in g.cfg.elastic_resolutions]
        blocks.append(grid(tiles, cols=len(g.cfg.elastic_resolutions)))
    return grid(blocks, cols=len(blocks), pad=12)


@torch.no_grad()
def slider_strip(g, direction, seeds=SLIDER_SEEDS) -> Image.Image:
    """Rows: each seed at full quality, then the first seed through the preview configuration."""
    size = g.cfg.resolution
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


@torch.no_grad()
def renderer_correspondence(g, n: int = 6, seed: int = 99) -> tuple[Image.Image, float, float]:
    """The renderer's face for z (its first 16 entries are the face's factors, see the warm start) above
    what G(z) draws; mean PSNR to its own face and to the next latent's face (chance level)."""
    z = torch.randn(n, g.cfg.style_dim, generator=torch.Generator().manual_seed(seed))
    faces = faces_of_latents(z, g.cfg.resolution)
    out = g(z, noise="const")
    own = statistics.mean(psnr(out[i:i + 1], faces[i:i + 1]) for i in range(n))
    other = statistics.mean(psnr(out[i:i + 1], faces[(i + 1) % n][None]) for i in range(n))
    tiles = [_tile(x, g.cfg.resolution) for x in torch.cat([faces, out])]
    return grid(tiles, cols=n), own, other


def projections(model, perceptual, n: int) -> tuple[Image.Image, list[dict]]:
    """Held-out procedural faces: rows target, encoder guess, projected (full), projected preview 0.25x@32."""
    from .data import ProceduralFaces
    g = model.generator
    size, ds = g.cfg.resolution, ProceduralFaces(g.cfg.resolution, seed=HELD_OUT_SEED)
    rows: list[list[Image.Image]] = [[], [], [], []]
    stats = []
    small = g.cfg.elastic_resolutions[-1]
    for i in range(n):
        x = ds[i][None]
        with torch.no_grad():
            guess = g.synthesis(initial_wplus(g, x, model.encoder))
        r = project(g, x, perceptual, ProjectionOptions(seed=i), encoder=model.encoder)
        with torch.no_grad():
            full = g.synthesis(r.wplus)
            preview = g.synthesis(r.wplus, channels=TRAINED_RATIOS[-1], target_res=small)
        rows[0].append(_tile(x[0], size))
        rows[1].append(_tile(guess[0], size))
        rows[2].append(_tile(full[0], size))
        rows[3].append(_tile(preview[0], size))
        stats.append({"encoder": psnr(guess, x), "projected": psnr(full, x),
                      "preview_vs_final": psnr(preview, downsample(full, small)), "steps": r.steps})
    return grid([t for row in rows for t in row], cols=n), stats


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
    for label, o in zip(ablations, others):
        lines += ["", f"Against *{label}*: {base - statistics.mean(c['psnr'] for c in o.values()):+.2f} dB mean PSNR "
                      f"over all sub-generators, {statistics.mean(ours[k]['psnr'] - o[k]['psnr'] for k in reduced):+.2f} dB "
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


def write_model_card(model_path: Path, out: Path, n_projections: int = 6, log_fn=print) -> Path:
    t0 = time.monotonic()
    model = load_model(model_path)
    g = model.generator.eval().requires_grad_(False)
    meta, figs = model.metadata, out.parent / out.stem
    figs.mkdir(parents=True, exist_ok=True)
    perceptual = make_perceptual()
    rel = figs.name
    lines = [f"# The built-in demo model (`{meta.get('name', Path(model_path).stem)}`)", "",
             f"Regenerate this page: `anycost-train model-card --model {model_path} --out {out}`", "",
             f"Figures made {time.strftime('%Y-%m-%d')} on {cpu_name()}. File: {Path(model_path).stat().st_size / 2 ** 20:.1f} MiB; "
             f"{g.cfg.resolution} px generator, {sum(p.numel() for p in g.parameters()) / 1e6:.2f} M parameters"
             + (f", encoder {sum(p.numel() for p in model.encoder.parameters()) / 1e6:.2f} M" if model.encoder else "")
             + ".", "", "## How it was trained", "",
             "| step | amount | command | commit |", "|---|---|---|---|"]
    for s in meta.get("lineage", []):
        resumed = "".join(f"; resumed: `{c}`" for c in s.get("resumed", []))
        lines.append(f"| {s['stage']} | {s['amount']} | `{s['command']}`{resumed} | {str(s['commit'])[:10]} |")
    lines += ["", "The recipe as one script: `scripts/train_demo_model.sh`."]

    log_fn("grid")
    paper_grid(g).save(figs / "grid.png")
    lines += ["", "## Sub-generators: channels x resolution", "",
              f"Seeds {', '.join(map(str, GRID_SEEDS))} (truncation {TRUNCATION}); per seed, rows are channel ratios "
              f"{', '.join(f'{r:g}' for r in TRAINED_RATIOS)}, columns resolutions "
              f"{', '.join(map(str, g.cfg.elastic_resolutions))} px (nearest-neighbour upscaled).", "",
              f"![grid]({rel}/grid.png)", "", "## Sliders", "",
              f"Each strip: the slider from its minimum to its maximum in {SLIDER_STEPS} steps; rows are seeds "
              f"{', '.join(map(str, SLIDER_SEEDS))} at full quality, then seed {SLIDER_SEEDS[0]} through the "
              f"{PREVIEW[0]:g}x @ {PREVIEW[1]} px preview.", ""]
    dirs = from_model_file(meta, model.extra_tensors, g.n_style)
    for d in dirs.values():
        if d.name not in ATTRIBUTES:
            continue
        log_fn(f"slider {d.name}")
        slider_strip(g, d).save(figs / f"slider-{d.name}.png")
        lines += [f"**{d.name}** ({d.min:g} .. {d.max:g})", "", f"![{d.name}]({rel}/slider-{d.name}.png)", ""]

    if any(st.get("stage") == "renderer" for st in meta.get("lineage", [])):
        log_fn("renderer correspondence")
        img, own, other = renderer_correspondence(g)
        img.save(figs / "renderer.png")
        lines += ["## What a latent names, and what the model draws", "",
                  "Top: the procedural renderer's face for six random latents (the warm start ties the first "
                  "16 entries of z to the face's factors); bottom: the model's image of the same latents. "
                  f"Mean PSNR to its own face {own:.2f} dB, to the next latent's face {other:.2f} dB.", "",
                  f"![renderer]({rel}/renderer.png)", ""]

    log_fn(f"projecting {n_projections} held-out faces")
    img, stats = projections(model, perceptual, n_projections)
    img.save(figs / "projection.png")
    lines += ["## Projection of held-out procedural faces", "",
              f"Seeds {HELD_OUT_SEED}+ (never seen in training). Rows: the face, the encoder's guess, the "
              "projection (encoder, then optimization with the backend's default options), and its "
              f"{TRAINED_RATIOS[-1]:g}x @ {g.cfg.elastic_resolutions[-1]} px preview.", "",
              "![projection](" + rel + "/projection.png)", "",
              "| face | encoder PSNR | projected PSNR | preview vs final PSNR | steps |", "|---|---|---|---|---|"]
    for i, s in enumerate(stats):
        lines.append(f"| {i} | {s['encoder']:.2f} | {s['projected']:.2f} | {s['preview_vs_final']:.2f} | {s['steps']} |")
    lines += ["", "## Consistency of each sub-generator with the full generator", ""]
    lines += _consistency_table(meta.get("figures", {}))
    lines += [f"Page generated in {time.monotonic() - t0:.0f} s.", ""]
    out.write_text("\n".join(lines) + "\n")
    return out
