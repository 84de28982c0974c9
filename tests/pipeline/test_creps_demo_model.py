"""The built-in CREPS demo: shipped beside the demo model, in its W space (same mapping network,
its encoder and directions), agreeing with it as its figures say, drawn at any size from the
command line, and served by default."""
import numpy as np
import pytest
import torch

from anycost.editing.perceptual import make_perceptual
from anycost.formats.creps import BUILTIN_CREPS_DEMO
from anycost.formats.registry import open_model
from anycost_train.creps_card import LATENT_SEED, agreement
from anycost_train.creps_training import teacher_directions

from ..conftest import run_cli
from ..daemon_helpers import Daemon


@pytest.fixture(scope="module")
def creps():
    assert BUILTIN_CREPS_DEMO.is_file(), f"{BUILTIN_CREPS_DEMO} is not in the package"
    return open_model("creps-demo", kind="creps")


@pytest.fixture(scope="module")
def demo():
    return open_model("demo")


def test_shipped_in_the_demo_models_w_space(creps, demo):
    assert BUILTIN_CREPS_DEMO.stat().st_size <= 25 * 1024 * 1024
    meta = creps.metadata
    assert meta["name"] == "creps-demo" and meta["w_space"]["model"] == "demo" and not meta.get("untrained")
    g = creps.generator
    z = torch.randn(4, g.cfg.style_dim)
    with torch.no_grad():
        assert torch.allclose(g.map(z)[:, 0], demo.generator.mapping(z), atol=1e-3)     # float16 in the file
    assert creps.encoder is not None and meta["directions"] == teacher_directions(demo, g.cfg.num_ws)[0]
    assert all(torch.equal(creps.extra_tensors[f"directions.{d['name']}"].float(),
                           demo.extra_tensors[f"directions.{d['name']}"].float()) for d in meta["directions"])
    stages = [s["stage"] for s in meta["lineage"]]
    assert stages[0] == "demo: teacher" and stages[-1] == "creps"


def test_agreement_with_demo_is_what_the_file_says(creps, demo):
    stored = creps.metadata["figures"]["agreement"]
    z = torch.randn(8, demo.generator.cfg.style_dim, generator=torch.Generator().manual_seed(LATENT_SEED))
    with torch.no_grad():
        latents = [demo.generator.latent_to_wplus(zz[None]) for zz in z]
    fresh = agreement(creps.generator, demo.generator, latents, make_perceptual())
    assert abs(fresh["psnr"] - stored["psnr"]) < 1.5, (fresh, stored)


def test_sample_any_size_and_a_region_from_the_command_line(tmp_path):
    full, part = tmp_path / "full.npy", tmp_path / "part.npy"
    r = run_cli("--threads", "1", "sample", "--model", "creps-demo", "--seed", "3", "--size", "300x200",
                "--out", str(full))
    assert r.returncode == 0, r.stderr
    r = run_cli("--threads", "1", "sample", "--model", "creps-demo", "--seed", "3", "--size", "300x200",
                "--region", "250,30,50,90", "--out", str(part))
    assert r.returncode == 0, r.stderr
    a, b = np.load(full), np.load(part)
    assert a.shape == (1, 3, 200, 300) and np.array_equal(a[:, :, 30:120, 250:300], b)


def test_served_by_default(tmp_path):
    d = Daemon(tmp_path, None)
    try:
        hello = d.wait_ready()
        assert hello.models == ("demo", "creps-demo") and hello.default_model == "demo"
    finally:
        assert d.stop() == 0
