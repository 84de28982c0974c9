"""The built-in demo model: shipped, self-describing, drawing the face of its latent, served by default;
and the release step that makes such a file."""
import statistics

import pytest
import torch
from safetensors import safe_open

from anycost.editing.consistency import consistency_figures
from anycost.editing.directions import from_model_file
from anycost.editing.perceptual import make_perceptual
from anycost.formats.checkpoints import load_model, save_model
from anycost.formats.registry import BUILTIN_DEMO, open_model
from anycost.models import TRAINED_RATIOS
from anycost_train import release as release_mod
from anycost_train.directions import SUPERVISED
from anycost_train.release import lineage, release

from ..conftest import run_cli


@pytest.fixture(scope="module")
def demo():
    assert BUILTIN_DEMO.is_file(), f"{BUILTIN_DEMO} is not in the package"
    return open_model("demo")


def test_shipped_file_is_small_and_self_describing(demo):
    assert BUILTIN_DEMO.stat().st_size <= 25 * 1024 * 1024
    meta = demo.metadata
    assert meta["name"] == "demo" and not meta.get("untrained")
    assert demo.generator.cfg.resolution == 64 and demo.encoder is not None
    assert "non-commercial" in meta["licence"] and "DigiFace-1M" in meta["licence"]
    dirs = from_model_file(meta, demo.extra_tensors, demo.generator.n_style)
    assert set(SUPERVISED) <= set(dirs) and all(dirs[a].min < 0 < dirs[a].max for a in SUPERVISED)
    entries = {e["name"]: e for e in meta["directions"]}
    assert all(entries[a]["attribute"] == SUPERVISED[a] for a in SUPERVISED)   # fitted, not hand-written
    configs = {(c["ratio"], c["resolution"]) for c in meta["figures"]["consistency"]}
    assert demo.generator.cfg.elastic_resolutions == [64, 32, 16]      # no 8 px "preview" of a face
    expected = {(r, k) for r in TRAINED_RATIOS for k in (64, 32, 16)} - {(1.0, 64)}
    assert configs == expected
    stages = [s["stage"] for s in meta["lineage"]]
    assert stages[0] == "teacher" and "adach" in stages and stages[-2:] == ["encoder", "directions"]
    assert meta["alignment"]["fitted"]["faces_found"] > 0.5 * meta["alignment"]["fitted"]["samples"]
    assert all(s["command"] and len(s["commit"]) == 40 and s["amount"] for s in meta["lineage"])
    assert meta["figures"]["ablations"], "the ablation without the paper's techniques is measured"


def test_demo_draws_the_teachers_face_of_its_latent(demo):
    """The first 100 entries of z are the teacher's latent (the warm start): G(z) must be closer to the
    teacher's face of that latent than to the teacher's faces of other latents."""
    from anycost.editing.projection import psnr
    from anycost_train.teachers import DCGANFaces
    g, teacher = demo.generator.eval(), DCGANFaces()
    z = torch.randn(8, g.cfg.style_dim, generator=torch.Generator().manual_seed(99))
    with torch.no_grad():
        want, got = teacher.images(z[:, :100]), g(z, noise="const")
    own = statistics.mean(psnr(got[i:i + 1], want[i:i + 1]) for i in range(8))
    other = statistics.mean(psnr(got[i:i + 1], want[(i + 1) % 8][None]) for i in range(8))
    assert own > 15.0 and own > other + 2.0, (own, other)


def test_demo_draws_faces_the_detector_finds(demo):
    from anycost_train.attributes import AttributeMeter
    from anycost_train.directions import render, sample_w
    g = demo.generator.eval()
    meter = AttributeMeter(need_age=False)
    try:
        rate = meter.found(render(g, sample_w(g, 24, 7, truncation=1.0)[:, None].expand(-1, g.n_style, -1))).mean()
    finally:
        meter.close()
    assert rate >= 0.4, rate       # the model card has the rate on 100 samples; the old model drew none


def test_consistency_figures_are_what_the_model_does(demo):
    """The figures the daemon's budget choice reads agree with a fresh measurement (fewer latents)."""
    fresh = {(c["ratio"], c["resolution"]): c["psnr"]
             for c in consistency_figures(demo.generator, make_perceptual(), n=16, seed=5)}
    stored = {(c["ratio"], c["resolution"]): c["psnr"] for c in demo.metadata["figures"]["consistency"]}
    for key, value in stored.items():
        assert abs(fresh[key] - value) < 2.0, (key, fresh[key], value)
    assert statistics.mean(stored[(1.0, k)] for k in (32, 16)) > statistics.mean(
        stored[(0.25, k)] for k in (32, 16))


def test_models_list_and_serve_default_to_the_demo(tmp_path):
    r = run_cli("models", "list")
    assert r.returncode == 0 and "built in" in r.stdout
    from anycost.protocol.client import Client

    from ..daemon_helpers import Daemon
    d = Daemon(tmp_path, None)
    d.wait_ready()
    with Client(d.address) as c:
        m = c.call("models")["models"][0]
        assert m["name"] == "demo" and not m["untrained"] and m["has_encoder"]
        assert {x["name"] for x in m["directions"]} >= set(SUPERVISED) and "non-commercial" in m["licence"]
    assert d.stop() == 0


def test_release_measures_records_and_limits_size(tiny_model_file, tmp_path, monkeypatch):
    out = release(tiny_model_file, tmp_path / "r.safetensors", "tiny-release",
                  {"same": tiny_model_file}, log_fn=lambda *_: None)
    m = load_model(out)
    assert m.metadata["name"] == "tiny-release"
    fig = m.metadata["figures"]
    assert len(fig["consistency"]) == 15 and fig["ablations"]["same"]["consistency"] == fig["consistency"]
    assert all(c["psnr"] > 0 and c[fig["measured"]["perceptual"]] >= 0 for c in fig["consistency"])
    with safe_open(str(out), "pt") as f:                               # stored in half precision
        assert {f.get_tensor(k).dtype for k in f.keys() if k.startswith("g.") and "weight" in k} == {torch.half}
    monkeypatch.setattr(release_mod, "MAX_SHIPPED_BYTES", 1000)
    with pytest.raises(ValueError, match="over the"):
        release(tiny_model_file, tmp_path / "big.safetensors", "x", log_fn=lambda *_: None)
    assert not (tmp_path / "big.safetensors").exists()


def test_release_refuses_a_different_architecture(tiny_model_file, tmp_path):
    other = tmp_path / "other.safetensors"
    save_model(other, open_model("random:demo-64").generator, {})
    with pytest.raises(ValueError, match="different architecture"):
        release(tiny_model_file, tmp_path / "r.safetensors", "x", {"other": other}, log_fn=lambda *_: None)


def test_lineage_follows_init_and_adds_encoder_and_directions():
    meta = {"training": {"stage": "adach", "images": 80, "command": "b", "commit": "c2",
                         "init": {"stage": "renderer", "images": 40, "command": "a", "commit": "c1", "init": None,
                                  "history": [{"command": "a"}, {"command": "a --resume"}]}},
            "encoder_training": {"step": 5, "batch": 8, "command": "e", "commit": "c3"},
            "directions_training": {"samples": 9, "command": "d", "commit": "c3"}}
    assert [(s["stage"], s["amount"], s["command"]) for s in lineage(meta)] == [
        ("renderer", "40 images", "a"), ("adach", "80 images", "b"), ("encoder", "5 steps of batch 8", "e"),
        ("directions", "9 measured samples", "d")]
    assert lineage(meta)[0]["resumed"] == ["a --resume"]
