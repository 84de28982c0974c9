"""The built-in demo model: shipped, self-describing, drawing the face of its latent, served by default;
and the release step that makes such a file."""
import statistics

import pytest
import torch
from safetensors import safe_open

from anycost.checkpoints import load_model, save_model
from anycost.editing import from_model_file
from anycost.hub import BUILTIN_DEMO, open_model
from anycost.models import TRAINED_RATIOS
from anycost.perceptual import make_perceptual
from anycost_train import release as release_mod
from anycost_train.faces import ATTRIBUTES
from anycost_train.model_card import renderer_correspondence
from anycost_train.release import consistency_figures, lineage, release

from .conftest import run_cli


@pytest.fixture(scope="module")
def demo():
    assert BUILTIN_DEMO.is_file(), f"{BUILTIN_DEMO} is not in the package"
    return open_model("demo")


def test_shipped_file_is_small_and_self_describing(demo):
    assert BUILTIN_DEMO.stat().st_size <= 25 * 1024 * 1024
    meta = demo.metadata
    assert meta["name"] == "demo" and not meta.get("untrained")
    assert demo.generator.cfg.resolution == 128 and demo.encoder is not None
    dirs = from_model_file(meta, demo.extra_tensors, demo.generator.n_style)
    assert set(ATTRIBUTES) <= set(dirs) and all(dirs[a].min < 0 < dirs[a].max for a in ATTRIBUTES)
    configs = {(c["ratio"], c["resolution"]) for c in meta["figures"]["consistency"]}
    expected = {(r, k) for r in TRAINED_RATIOS for k in (128, 64, 32, 16)} - {(1.0, 128)}
    assert configs == expected
    stages = [s["stage"] for s in meta["lineage"]]
    assert stages[0] == "renderer" and "adach" in stages and stages[-2:] == ["encoder", "directions"]
    assert all(s["command"] and len(s["commit"]) == 40 and s["amount"] for s in meta["lineage"])
    assert meta["figures"]["ablations"], "the ablation without the paper's techniques is measured"


def test_demo_draws_the_face_of_its_latent(demo):
    """The first 16 entries of z are the face's factors (the warm start): G(z) must be closer to that
    face than to the faces of the other latents, i.e. it draws faces, and the right ones."""
    _, own, other = renderer_correspondence(demo.generator, n=8, seed=99)
    assert own > 20.0 and own > other + 5.0, (own, other)


def test_consistency_figures_are_what_the_model_does(demo):
    """The figures the daemon's budget choice reads agree with a fresh measurement (fewer latents)."""
    fresh = {(c["ratio"], c["resolution"]): c["psnr"]
             for c in consistency_figures(demo.generator, make_perceptual(), n=16, seed=5)}
    stored = {(c["ratio"], c["resolution"]): c["psnr"] for c in demo.metadata["figures"]["consistency"]}
    for key, value in stored.items():
        assert abs(fresh[key] - value) < 2.0, (key, fresh[key], value)
    assert statistics.mean(stored[(1.0, k)] for k in (64, 32, 16)) > statistics.mean(
        stored[(0.25, k)] for k in (64, 32, 16))


def test_models_list_and_serve_default_to_the_demo(tmp_path):
    r = run_cli("models", "list")
    assert r.returncode == 0 and "built in" in r.stdout
    from anycost.client import Client
    from .daemon_helpers import Daemon
    d = Daemon(tmp_path, None)
    d.wait_ready()
    with Client(d.address) as c:
        m = c.call("models")["models"][0]
        assert m["name"] == "demo" and not m["untrained"] and m["has_encoder"]
        assert {x["name"] for x in m["directions"]} >= set(ATTRIBUTES)
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
    save_model(other, open_model("random:demo-128").generator, {})
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
        ("directions", "9 labelled samples", "d")]
    assert lineage(meta)[0]["resumed"] == ["a --resume"]
