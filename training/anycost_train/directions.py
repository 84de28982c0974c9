"""Attribute directions in W: a classifier trained on labelled faces labels generated samples, then a
linear boundary per attribute (InterFaceGAN-style normal vector), orthogonalised against the other
attributes where that reduces entanglement; plus unsupervised PCA directions.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from anycost.editing import Direction, apply_edit, default_rows, pca_directions
from anycost.models import Generator

from .data import ProceduralFaces
from .faces import ATTRIBUTES

log = logging.getLogger("anycost_train")
BINARY = {"glasses", "hair_long"}
CLASSIFIER_SIZE = 64
SLIDER = 3.0          # slider range +-3, one unit = one standard deviation of w along the direction


class AttributeClassifier(nn.Module):
    """A small CNN on 64 px images: logits for binary attributes, values for continuous ones."""

    def __init__(self, n_out: int = len(ATTRIBUTES), width: int = 32):
        super().__init__()
        layers, c = [], 3
        for w in (width, width * 2, width * 4, width * 4):
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.LeakyReLU(0.2), nn.AvgPool2d(2)]
            c = w
        self.features = nn.Sequential(*layers)
        # the 4x4 map is flattened, not averaged: where a feature is matters (a mouth's corners
        # above or below its centre is the smile)
        self.head = nn.Linear(c * 16, n_out)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if img.shape[-1] != CLASSIFIER_SIZE:
            img = F.interpolate(img, size=CLASSIFIER_SIZE, mode="area" if img.shape[-1] > CLASSIFIER_SIZE
                                else "bilinear")
        return self.head(self.features(img).flatten(1))

    def scores(self, img: torch.Tensor) -> torch.Tensor:
        """Per attribute: probability for binary ones, the predicted value for continuous ones."""
        out = self(img)
        binary = torch.tensor([a in BINARY for a in ATTRIBUTES], device=out.device)
        return torch.where(binary, torch.sigmoid(out), out)


def _labels(ds: ProceduralFaces, start: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.stack([ds[start + i] for i in range(n)])
    y = torch.tensor([[float(ds.labels(start + i)[a]) for a in ATTRIBUTES] for i in range(n)])
    return x, y


def train_classifier(steps: int = 800, batch: int = 32, seed: int = 0, log_fn=None) -> tuple[AttributeClassifier, dict]:
    """Train on procedural faces (seeds 2,000,000+), evaluate on 256 held-out ones."""
    torch.manual_seed(seed)
    clf = AttributeClassifier()
    opt = torch.optim.Adam(clf.parameters(), lr=2e-3)
    ds = ProceduralFaces(CLASSIFIER_SIZE, seed=2_000_000)
    binary = torch.tensor([a in BINARY for a in ATTRIBUTES])
    for step in range(steps):
        x, y = _labels(ds, step * batch, batch)
        out = clf(x)
        loss = (F.binary_cross_entropy_with_logits(out[:, binary], y[:, binary])
                + F.mse_loss(out[:, ~binary], y[:, ~binary]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log_fn and (step + 1) % 100 == 0:
            log_fn(f"classifier step {step + 1}/{steps}: loss {loss.item():.4f}")
    clf.eval()
    x, y = _labels(ProceduralFaces(CLASSIFIER_SIZE, seed=3_000_000), 0, 256)
    with torch.no_grad():
        s = clf.scores(x)
    quality = {}
    for i, a in enumerate(ATTRIBUTES):
        if a in BINARY:
            quality[a] = {"accuracy": round(((s[:, i] > 0.5).float() == y[:, i]).float().mean().item(), 3)}
        else:
            quality[a] = {"correlation": round(torch.corrcoef(torch.stack([s[:, i], y[:, i]]))[0, 1].item(), 3)}
    return clf, quality


@dataclass
class DirectionReport:
    name: str
    own_change: float          # mean change of its own attribute score over the slider range
    other_change: float        # mean |change| of the other attributes' scores
    orthogonalized: bool


@torch.no_grad()
def label_samples(g: Generator, clf: AttributeClassifier, n: int, truncation: float = 0.7, seed: int = 0,
                  batch: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """W of n generated samples and the classifier's scores of their images."""
    gen = torch.Generator().manual_seed(seed)
    ws, scores = [], []
    for start in range(0, n, batch):
        z = torch.randn(min(batch, n - start), g.cfg.style_dim, generator=gen)
        w = g.w_avg + truncation * (g.mapping(z) - g.w_avg)
        img = g.synthesis(w[:, None].expand(-1, g.n_style, -1))
        ws.append(w)
        scores.append(clf.scores(img))
    return torch.cat(ws), torch.cat(scores)


def linear_boundary(w: torch.Tensor, score: torch.Tensor, ridge: float = 1e-2) -> torch.Tensor:
    """Unit normal of the best linear predictor of `score` from w (least squares with a small ridge)."""
    wc = w - w.mean(0)
    sc = score - score.mean()
    a = wc.T @ wc / len(w) + ridge * torch.eye(w.shape[1])
    n = torch.linalg.solve(a, wc.T @ sc / len(w))
    return n / n.norm()


@torch.no_grad()
def effect(g: Generator, clf: AttributeClassifier, w: torch.Tensor, d: Direction, index: int) -> tuple[float, float]:
    """Mean change of each attribute score from slider -max to +max, over samples w [N, D]."""
    wplus = w[:, None].expand(-1, g.n_style, -1)
    lo = clf.scores(g.synthesis(apply_edit(wplus, {d.name: d}, {d.name: d.min})))
    hi = clf.scores(g.synthesis(apply_edit(wplus, {d.name: d}, {d.name: d.max})))
    delta = (hi - lo).mean(0)
    others = torch.cat([delta[:index], delta[index + 1:]]).abs().mean().item()
    return delta[index].item(), others


def attribute_directions(g: Generator, clf: AttributeClassifier, n_samples: int = 2000, n_eval: int = 64,
                         log_fn=None) -> tuple[dict[str, Direction], list[DirectionReport]]:
    w, scores = label_samples(g, clf, n_samples)
    normals = {a: linear_boundary(w, scores[:, i]) for i, a in enumerate(ATTRIBUTES)}
    rows = default_rows(g.n_style)
    eval_w = w[:n_eval]
    dirs, reports = {}, []
    for i, a in enumerate(ATTRIBUTES):
        others = torch.stack([normals[b] for b in ATTRIBUTES if b != a])          # [k, D]
        q, _ = torch.linalg.qr(others.T)                                          # basis of their span
        ortho = normals[a] - q @ (q.T @ normals[a])
        ortho = ortho / ortho.norm()
        best = None
        for vec, is_ortho in ((normals[a], False), (ortho, True)):
            sigma = (w @ vec).std().item()
            d = Direction(a, vec, -SLIDER, SLIDER, sigma, rows, "model")
            own, other = effect(g, clf, eval_w, d, i)
            if own < 0:                      # point the slider toward "more of the attribute"
                d.vector = -vec
                own = -own
            score = own / (other + 1e-6)
            if best is None or score > best[0] * 1.05 and own > 0.5 * best[1].own_change:
                best = (score, DirectionReport(a, own, other, is_ortho), d)
        dirs[a] = best[2]
        reports.append(best[1])
        if log_fn:
            log_fn(f"{a}: own change {best[1].own_change:.3f}, others {best[1].other_change:.3f}"
                   f"{' (orthogonalised)' if best[1].orthogonalized else ''}")
    return dirs, reports


def all_directions(g: Generator, clf: AttributeClassifier, n_samples: int = 2000, log_fn=None):
    """Attribute directions, then PCA directions; returns (directions, reports)."""
    dirs, reports = attribute_directions(g, clf, n_samples, log_fn=log_fn)
    dirs.update(pca_directions(g))
    return dirs, reports


def directions_to_file(dirs: dict[str, Direction], reports: list[DirectionReport]) -> tuple[list, dict]:
    """Metadata entries and tensors for our model file."""
    by_name = {r.name: r for r in reports}
    meta, tensors = [], {}
    for name, d in dirs.items():
        entry = {"name": name, "min": d.min, "max": d.max, "scale": d.scale, "rows": list(d.rows),
                 "kind": "pca" if d.source == "pca" else "attribute"}
        if name in by_name:
            r = by_name[name]
            entry.update(own_change=round(r.own_change, 4), other_change=round(r.other_change, 4),
                         orthogonalized=r.orthogonalized)
        meta.append(entry)
        tensors[f"directions.{name}"] = d.vector.float().contiguous()
    return meta, tensors
