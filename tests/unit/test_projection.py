import pytest
import torch

from anycost.editing.perceptual import laplacian_l1, make_perceptual
from anycost.editing.projection import ProjectionCancelled, ProjectionOptions, fit_metrics, project
from anycost.formats.checkpoints import load_model


@pytest.fixture(scope="module")
def setup(tiny_model_file):
    g = load_model(tiny_model_file).generator.requires_grad_(False)
    with torch.no_grad():
        w = g.latent_to_wplus(torch.randn(1, 64, generator=torch.Generator().manual_seed(3)), truncation=0.8)
        target = g.synthesis(w)
    return g, target


def test_projection_improves_the_fit_and_reports_progress(setup):
    g, target = setup
    perceptual = make_perceptual()
    start = fit_metrics(g, g.w_avg[None, None].expand(1, g.n_style, -1), target, perceptual)["psnr"]
    seen = []
    r = project(g, target, perceptual, ProjectionOptions(steps=40, preview_every=10, patience=100),
                progress=lambda s, n, loss, img: seen.append((s, img is not None)))
    assert r.metrics["psnr"] > start + 3
    assert [s for s, _ in seen] == list(range(1, 41))
    assert [s for s, has in seen if has] == [10, 20, 30, 40]
    assert r.wplus.shape == (1, g.n_style, 64) and not r.wplus.requires_grad
    assert {c["resolution"] for c in r.metrics["configs"]} == set(g.cfg.elastic_resolutions)


def test_consistency_term_keeps_previews_faithful(setup):
    """The paper's point: optimizing sub-generators too makes their outputs closer to the photo."""
    g, target = setup
    perceptual = make_perceptual()
    opts = dict(steps=60, patience=1000, seed=1)
    plain = project(g, target, perceptual, ProjectionOptions(consistency_weight=0.0, **opts))
    aware = project(g, target, perceptual, ProjectionOptions(consistency_weight=1.0, **opts))

    def mean(r):
        return sum(c["psnr"] for c in r.metrics["configs"]) / len(r.metrics["configs"])

    assert mean(aware) > mean(plain)


def test_cancel_and_early_stop(setup):
    g, target = setup
    calls = iter(range(100))
    with pytest.raises(ProjectionCancelled):
        project(g, target, make_perceptual(), ProjectionOptions(steps=50), should_stop=lambda: next(calls) >= 3)
    r = project(g, target, make_perceptual(), ProjectionOptions(steps=200, lr=0.0, patience=5))
    assert r.stopped == "converged" and r.steps <= 6


def test_fallback_perceptual_distance():
    a = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(laplacian_l1(a, a), torch.zeros(2))
    b = a.clone()
    b[:, :, ::2] += 0.2       # a high-frequency change
    assert (laplacian_l1(a, b) > 0).all()
