"""A CREPS model's page under docs/ (`anycost-train creps-card`): the same image at several sizes,
scale consistency against the anycost generator followed by bicubic upscaling, and, for a model
trained in an anycost model's W space, how closely the two agree on the same latents (random and
projected-then-edited ones)."""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from anycost.core.errors import CheckpointError
from anycost.core.imaging import grid, to_pil
from anycost.core.timing import cpu_name
from anycost.editing.directions import apply_edit, from_model_file
from anycost.editing.perceptual import make_perceptual
from anycost.editing.projection import ProjectionOptions, project, psnr
from anycost.formats.registry import open_model

from .heldout import held_out_faces

CONSISTENCY_SIZES = (32, 64, 128, 256, 512)
GRID_SIZES = (32, 64, 128, 256, 512)
LATENT_SEED = 424242


def box_down(img: torch.Tensor, size: int) -> torch.Tensor:
    return F.avg_pool2d(img, img.shape[-1] // size)


def bicubic(img: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(img, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)


def anycost_at(g, wplus: torch.Tensor, size: int) -> torch.Tensor:
    """What the anycost pipeline shows at `size`: the sub-generator of that resolution when it has
    one (its previews), else the full output resized bicubically (its finals)."""
    if size in g.cfg.elastic_resolutions:
        return g.synthesis(wplus, target_res=size)
    return bicubic(g.synthesis(wplus), size)


def open_w_space(metadata: dict):
    """The anycost model whose W space a CREPS model shares: as the trainer was given it (a file or a
    name), else by its name; None when it shares none."""
    w_space = metadata.get("w_space")
    if not w_space:
        return None
    try:
        return open_model(w_space.get("source") or w_space["model"])
    except CheckpointError:
        return open_model(w_space["model"])


@torch.no_grad()
def random_latents(creps, anycost, n: int, seed: int = LATENT_SEED) -> list[torch.Tensor]:
    """W+ of n seeded z: through the anycost model's mapping (its rows) when the CREPS model shares
    its W space, else through the CREPS model's own (every row the same w)."""
    z = torch.randn(n, creps.cfg.style_dim, generator=torch.Generator().manual_seed(seed))
    return [anycost.latent_to_wplus(zz[None]) if anycost is not None else creps.map(zz[None]) for zz in z]


@torch.no_grad()
def scale_consistency(creps, anycost, latents: Sequence[torch.Tensor]) -> list[dict]:
    """Per size s: PSNR of the 2s image box-downsampled to s against the s image itself, for CREPS
    and for the anycost pipeline (mean over the latents)."""
    sizes = sorted({*CONSISTENCY_SIZES, *(2 * s for s in CONSISTENCY_SIZES)})
    c_vals: dict[int, list[float]] = {s: [] for s in CONSISTENCY_SIZES}
    a_vals: dict[int, list[float]] = {s: [] for s in CONSISTENCY_SIZES}
    for wplus in latents:                   # every size drawn once per latent, each compared with its double
        ws = creps.wplus_from_anycost(wplus)
        c_img = {s: creps.render(ws, (s, s)) for s in sizes}
        a_img = {s: anycost_at(anycost, wplus, s) for s in sizes} if anycost is not None else None
        for s in CONSISTENCY_SIZES:
            c_vals[s].append(psnr(box_down(c_img[2 * s], s), c_img[s]))
            if a_img is not None:
                a_vals[s].append(psnr(box_down(a_img[2 * s], s), a_img[s]))
    return [{"size": s, "creps_psnr": round(statistics.mean(c_vals[s]), 2),
             "anycost_psnr": round(statistics.mean(a_vals[s]), 2) if a_vals[s] else None} for s in CONSISTENCY_SIZES]


@torch.no_grad()
def agreement(creps, anycost, wpluses: list[torch.Tensor], perceptual) -> dict:
    """PSNR and perceptual distance between CREPS and the anycost generator on the same W+, at the
    anycost resolution (CREPS drawn there directly)."""
    r = anycost.cfg.resolution
    p, d = [], []
    for wplus in wpluses:
        a = anycost.synthesis(wplus)
        c = creps.render(creps.wplus_from_anycost(wplus), (r, r))
        p.append(psnr(c, a))
        d.append(perceptual.distance(c.clamp(-1, 1), a.clamp(-1, 1)).item())
    return {"psnr": round(statistics.mean(p), 2), "psnr_min": round(min(p), 2),
            "distance": round(statistics.mean(d), 4), "n": len(wpluses)}


def projected_and_edited(anycost_model, n: int, steps: int, perceptual) -> list[torch.Tensor]:
    """Held-out faces projected with the anycost model, then each of its first two directions moved +2."""
    g = anycost_model.generator
    dirs = from_model_file(anycost_model.metadata, anycost_model.extra_tensors, g.n_style)
    faces, _ = held_out_faces(anycost_model.metadata, g.cfg.resolution, n)
    out = []
    for face in faces:
        res = project(g, face[None], perceptual, ProjectionOptions(steps=steps), encoder=anycost_model.encoder)
        out.append(res.wplus)
        out += [apply_edit(res.wplus, dirs, {name: 2.0}) for name in list(dirs)[:2]]
    return out


@torch.no_grad()
def size_strip(creps, wplus: torch.Tensor, show: int = 256) -> Image.Image:
    """One latent at each of GRID_SIZES, every tile shown at `show` px (nearest: pixels stay pixels)."""
    ws = creps.wplus_from_anycost(wplus)
    # PIL sets its filter names (Image.LANCZOS, ...) in a loop: mypy cannot see them
    return grid([to_pil(creps.render(ws, (s, s))[0]).resize((show, show), Image.NEAREST)  # type: ignore[attr-defined]
                 for s in GRID_SIZES], cols=len(GRID_SIZES))


@torch.no_grad()
def zoom_compare(creps, anycost, wplus: torch.Tensor, final: int = 512, crop: int = 160) -> Image.Image:
    """A crop across the face's left edge of a `final` px final: the anycost output resized
    bicubically | CREPS drawn at that size."""
    a = to_pil(bicubic(anycost.synthesis(wplus), final)[0])
    c = to_pil(creps.render(creps.wplus_from_anycost(wplus), (final, final))[0])
    box = (final // 8, final // 3, final // 8 + crop, final // 3 + crop)
    # PIL sets its filter names (Image.LANCZOS, ...) in a loop: mypy cannot see them
    return grid([a.crop(box).resize((2 * crop, 2 * crop), Image.NEAREST),  # type: ignore[attr-defined]
                 c.crop(box).resize((2 * crop, 2 * crop), Image.NEAREST)], cols=2)  # type: ignore[attr-defined]


def write_creps_card(model_spec: str, out: Path, n_latents: int = 16, n_faces: int = 4, steps: int = 50,
                     log_fn=print) -> Path:
    t0 = time.time()
    model = open_model(model_spec, kind="creps")
    creps = model.generator
    w_space = (model.metadata.get("w_space") or {}).get("model")
    anycost_model = open_w_space(model.metadata)
    anycost = anycost_model.generator if anycost_model else None
    if anycost is not None:
        anycost.requires_grad_(False)
    latents = random_latents(creps, anycost, n_latents)
    figures = out.with_suffix("")
    figures.mkdir(parents=True, exist_ok=True)
    log_fn("scale consistency ...")
    consistency = scale_consistency(creps, anycost, latents[:8])
    size_strip(creps, latents[0]).save(figures / "sizes.png")
    lines = [f"# The CREPS model `{model.name}`", "",
             f"Regenerate this page: `anycost-train creps-card --model {model_spec} --out {out}`", "",
             f"Figures made {time.strftime('%Y-%m-%d')} on {cpu_name()} ({torch.get_num_threads()} threads). Training: "
             f"{(model.metadata.get('training') or {}).get('images', '?')} images, "
             f"`{(model.metadata.get('training') or {}).get('command', '?')}`.", "",
             "## One latent at 32, 64, 128, 256 and 512 px", "",
             "The same continuous image sampled on finer grids (each shown at 256 px, nearest neighbour).", "",
             "![sizes](" + f"{figures.name}/sizes.png)", "",
             "## Scale consistency", "",
             "PSNR (dB) of the image at 2s, box-downsampled to s, against the image drawn at s; mean over "
             f"{len(latents[:8])} latents. CREPS draws both. The anycost pipeline draws a sub-generator where "
             "one exists for that size (its previews) and otherwise resizes its full output bicubically "
             "(its finals). Higher = a small preview shows what the large final will be.", "",
             "| s | CREPS | anycost + bicubic |", "|---|---|---|"]
    for r in consistency:
        lines.append(f"| {r['size']} | {r['creps_psnr']:.2f} | "
                     f"{'' if r['anycost_psnr'] is None else format(r['anycost_psnr'], '.2f')} |")
    if anycost is not None:
        perceptual = make_perceptual()
        log_fn("agreement on random latents ...")
        random_agree = agreement(creps, anycost, latents, perceptual)
        log_fn("projecting held-out faces ...")
        edited = projected_and_edited(anycost_model, n_faces, steps, perceptual)
        edited_agree = agreement(creps, anycost, edited, perceptual)
        zoom_compare(creps, anycost, edited[0]).save(figures / "zoom.png")
        pairs = []
        with torch.no_grad():
            for wplus in edited[:6]:
                pairs += [to_pil(anycost.synthesis(wplus)[0]),
                          to_pil(creps.render(creps.wplus_from_anycost(wplus), (anycost.cfg.resolution,) * 2)[0])]
        grid(pairs, cols=6).save(figures / "pairs.png")
        lines += ["", f"## Agreement with `{w_space}` (the anycost model whose W space it shares)", "",
                  f"CREPS drawn at {anycost.cfg.resolution} px against the anycost generator's output for the same "
                  f"W+. Perceptual distance: {perceptual.name}.", "",
                  "| latents | n | PSNR mean (dB) | PSNR worst | perceptual distance |", "|---|---|---|---|---|",
                  f"| random (z ~ N(0, I)) | {random_agree['n']} | {random_agree['psnr']:.2f} | "
                  f"{random_agree['psnr_min']:.2f} | {random_agree['distance']:.4f} |",
                  f"| held-out faces projected ({steps} steps), and each moved +2 along two directions | "
                  f"{edited_agree['n']} | {edited_agree['psnr']:.2f} | {edited_agree['psnr_min']:.2f} | "
                  f"{edited_agree['distance']:.4f} |", "",
                  "Pairs (anycost | CREPS) of a projected face and its edits:", "",
                  f"![pairs]({figures.name}/pairs.png)", "",
                  "A 512 px final, a crop across the face's edge: the anycost output resized bicubically | "
                  "CREPS drawn at 512 px:", "",
                  f"![zoom]({figures.name}/zoom.png)"]
    lines += ["", f"Whole page: {time.time() - t0:.0f} s."]
    out.write_text("\n".join(lines) + "\n")
    return out
