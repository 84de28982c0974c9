"""Encoder (official layout and ours), encoder training, attribute directions, project/edit CLI, report."""
import io
import lzma
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from anycost.core.defaults import DEMO_FACE
from anycost.editing.directions import from_model_file
from anycost.editing.perceptual import make_perceptual
from anycost.editing.projection import fit_metrics
from anycost.formats.checkpoints import load_model, load_official_encoder, save_model
from anycost.formats.registry import open_model
from anycost.models import Encoder, EncoderConfig

from ..conftest import fixture_path, run_cli

TRAIN_CLI = Path(sys.executable).with_name("anycost-train")


@pytest.fixture(scope="module")
def official_encoder_fixture():
    raw = lzma.decompress(fixture_path("anycost_official_encoder_small.pt.xz").read_bytes())
    return torch.load(io.BytesIO(raw), weights_only=True)


def test_official_encoder_loads_and_matches(official_encoder_fixture, official_file, tmp_path, monkeypatch):
    fx = official_encoder_fixture
    path = tmp_path / "encoder_small-config.pt"
    torch.save({"state_dict": fx["state_dict"]}, path)
    enc = load_official_encoder(path)
    assert enc.cfg == EncoderConfig.official(18, 512)
    with torch.no_grad():
        assert (enc(fx["input"]) - fx["output"]).abs().max() < 1e-4
    # placed beside an official generator in the model folder, it is picked up with it
    monkeypatch.setenv("ANYCOST_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    from anycost.formats import registry
    monkeypatch.setitem(registry.SOURCES, "small-config",
                        registry.Source("small-config", 128, "fixture", "generator_small-config.pt", "", "",
                                        sub_generators=True))
    (tmp_path / "cache" / "generator_small-config.pt").write_bytes(official_file.read_bytes())
    (tmp_path / "cache" / "encoder_small-config.pt").write_bytes(path.read_bytes())
    assert open_model("small-config").encoder is not None


def test_our_format_keeps_the_encoder(tiny_model_file, tmp_path):
    m = load_model(tiny_model_file)
    torch.manual_seed(0)
    enc = Encoder(EncoderConfig.small(m.generator.n_style, 64, 64)).eval()
    with torch.no_grad():
        enc.fc.weight.normal_(0, 0.01)
    path = save_model(tmp_path / "with-enc.safetensors", m.generator, {"name": "x"}, encoder=enc)
    back = load_model(path)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(back.encoder(x), enc(x))
    assert back.encoder(x).shape == (2, m.generator.n_style, 64)


@pytest.fixture(scope="module")
def trained_encoder(tiny_model_file, tmp_path_factory):
    from anycost_train.encoder_training import EncoderTrainer
    out = tmp_path_factory.mktemp("enc")
    t = EncoderTrainer(tiny_model_file, out, steps=40, batch=8, lr=1e-3, save_every=20)
    return t, t.run(progress=False)


def test_encoder_training_beats_the_mean_latent(trained_encoder):
    t, path = trained_encoder
    m = load_model(path)
    g = m.generator
    perceptual = make_perceptual()
    gen = torch.Generator().manual_seed(99)
    better = 0
    with torch.no_grad():
        for _ in range(4):
            w = g.latent_to_wplus(torch.randn(1, 64, generator=gen), truncation=0.8)
            x = g.synthesis(w)
            guess = fit_metrics(g, m.encoder(x), x, perceptual)["psnr"]
            mean = fit_metrics(g, g.w_avg[None, None].expand(1, g.n_style, -1), x, perceptual)["psnr"]
            better += guess > mean
    assert better >= 3
    assert m.metadata["encoder_training"]["step"] == 40


def test_encoder_training_resumes(trained_encoder, tiny_model_file):
    from anycost_train.encoder_training import EncoderTrainer
    t, path = trained_encoder
    again = EncoderTrainer(tiny_model_file, t.out, steps=42, batch=8, lr=1e-3, resume=True)
    assert again.step == 40
    again.run(progress=False)
    assert load_model(path).metadata["encoder_training"]["step"] == 42


@pytest.fixture(scope="module")
def model_with_directions(tmp_path_factory):
    """The built-in demo (it draws faces the detector finds) with two measured sliders fitted anew on
    few samples, one principal component named, and the others kept as PCs."""
    from anycost.formats.registry import BUILTIN_DEMO
    out = tmp_path_factory.mktemp("dirs") / "model.safetensors"
    r = subprocess.run([str(TRAIN_CLI), "--threads", "1", "directions", "--model", str(BUILTIN_DEMO), "--out", str(out),
                        "--samples", "120", "--eval", "6", "--judge-steps", "3", "--sliders", "age,smile",
                        "--pc", "glasses=PC3@0-4"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return out


def test_directions_are_stored_with_names_ranges_and_kinds(model_with_directions):
    m = load_model(model_with_directions)
    dirs = from_model_file(m.metadata, m.extra_tensors, m.generator.n_style)
    assert list(dirs)[:3] == ["age", "smile", "glasses"]
    assert list(dirs)[3:] == [f"PC{i}" for i in range(1, 9) if i != 3]
    for name, d in dirs.items():
        assert abs(d.vector.norm().item() - 1) < 1e-4 and d.min < 0 < d.max and d.scale > 0
        assert d.source == ("model" if name in ("age", "smile") else "pca")
    meta = {e["name"]: e for e in m.metadata["directions"]}
    assert meta["glasses"]["named_by"] == "eye" and dirs["glasses"].rows == (0, 4)
    for a, attr in (("age", "age"), ("smile", "smile")):
        assert meta[a]["attribute"] == attr and meta[a]["own_sd"] > 0 and "orthogonalized" in meta[a]
        assert meta[a]["specificity"] > 0 and set(meta[a]["other_sd"]) and attr not in meta[a]["other_sd"]
    assert m.metadata["attribute_sd"]["age"] > 1                     # years
    # candidates were judged where the sliders are used: on projected teacher faces
    assert m.metadata["directions_training"]["judged_on"] == "teacher faces projected in 3 steps"
    # the demo was paired with its teacher: candidates were also fitted to the teacher's images of each z
    assert m.metadata["directions_training"]["fitted_on"] == ["samples", "teacher gan-face-generate"]
    assert {meta[a]["fitted_on"] for a in ("age", "smile")} <= {"samples", "teacher"}
    assert all(isinstance(meta[a]["decoupled"], bool) for a in ("age", "smile"))
    assert m.encoder is not None                                    # the encoder survived
    # one slider unit is the model's own spread along the direction, untruncated (as the PCs'):
    # wider than the truncation-0.7 samples' the boundaries are fitted on
    with torch.no_grad():
        w = m.generator.mapping(torch.randn(4000, m.generator.cfg.style_dim,
                                            generator=torch.Generator().manual_seed(1)))
    for name in ("age", "smile"):
        spread = (w @ dirs[name].vector).std().item()
        assert abs(dirs[name].scale / spread - 1) < 0.1, (name, dirs[name].scale, spread)
    r = subprocess.run([str(TRAIN_CLI), "directions", "--model", str(model_with_directions), "--out",
                        str(model_with_directions.with_name("x.safetensors")), "--pc", "glasses=PC99@0-4"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "PC99" in r.stderr and "Traceback" not in r.stderr


def test_project_and_edit_commands(model_with_directions, tmp_path):
    img = Image.open(DEMO_FACE).convert("L")
    img.save(tmp_path / "grey.png")                                 # a mode the model lacks: converted
    r = run_cli("project", str(tmp_path / "grey.png"), "--model", str(model_with_directions), "--steps", "5",
                "--region", "20,20,200,200", "--out", str(tmp_path / "l.npy"),
                "--reconstruction", str(tmp_path / "r.png"))
    assert r.returncode == 0, r.stderr
    assert "PSNR" in r.stdout and "start: encoder" in r.stdout
    w = np.load(tmp_path / "l.npy")
    assert w.shape == (1, 10, 128) and Image.open(tmp_path / "r.png").size == (200, 200)
    r = run_cli("edit", str(tmp_path / "l.npy"), "--model", str(model_with_directions), "--set", "smile=2",
                "--set", "PC2=-1", "--channels", "0.5", "--resolution", "32", "--out", str(tmp_path / "e.png"))
    assert r.returncode == 0, r.stderr and Image.open(tmp_path / "e.png").size == (32, 32)
    plain = run_cli("edit", str(tmp_path / "l.npy"), "--model", str(model_with_directions),
                    "--out", str(tmp_path / "p.png"))
    smile = run_cli("edit", str(tmp_path / "l.npy"), "--model", str(model_with_directions), "--set", "smile=3",
                    "--out", str(tmp_path / "s.png"))
    assert plain.returncode == smile.returncode == 0
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "p.png")), np.asarray(Image.open(tmp_path / "s.png")))
    r = run_cli("edit", str(tmp_path / "l.npy"), "--model", str(model_with_directions), "--set", "grin=1",
                "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "'grin'" in r.stderr and "smile" in r.stderr
    (tmp_path / "bad.png").write_bytes(b"nope")
    r = run_cli("project", str(tmp_path / "bad.png"), "--model", str(model_with_directions),
                "--out", str(tmp_path / "b.npy"))
    assert r.returncode == 2 and "not a readable image" in r.stderr
    r = run_cli("project", str(tmp_path / "grey.png"), "--model", str(model_with_directions), "--region", "0,0,999,9",
                "--out", str(tmp_path / "b.npy"))
    assert r.returncode == 2 and "outside" in r.stderr
    info = run_cli("models", "info", str(model_with_directions))
    assert info.returncode == 0 and "encoder: yes" in info.stdout and "smile" in info.stdout and "-3..3" in info.stdout


def test_report_measures_projection_and_directions(model_with_directions, tmp_path):
    out = tmp_path / "report.md"
    r = subprocess.run([str(TRAIN_CLI), "--threads", "1", "report", "--model", str(model_with_directions), "--out",
                        str(out), "--images", "1", "--steps", "3"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "encoder only" in text and "alpha = 0.5" in text and "alpha = 0 " in text
    assert "| smile |" in text and "previews vs final" in text and "Regenerate:" in text


def test_daemon_serves_the_encoder_and_directions(model_with_directions, tmp_path):
    from anycost.protocol.client import Client

    from ..daemon_helpers import Daemon, face_image
    d = Daemon(tmp_path, model_with_directions)
    d.wait_ready()
    with Client(d.address) as c:
        m = c.call("models")["models"][0]
        assert m["has_encoder"] and [x["name"] for x in m["directions"]][:3] == ["age", "smile", "glasses"]
        opened = c.call("open", image=face_image(), steps=0, timeout=120)   # the encoder's guess alone
        assert opened["metrics"]["steps"] == 0 and opened["metrics"]["psnr"] > 0
        r = c.call("edit", session=opened["session"], values={"smile": 2.0}, budget_ms=1000)
        assert r["values"] == {"smile": 2.0}
    assert d.stop() == 0


def test_release_then_model_card(model_with_directions, tmp_path):
    """The two commands that publish a model: figures into the file, then its docs page from the file."""
    released = tmp_path / "released.safetensors"
    r = subprocess.run([str(TRAIN_CLI), "--threads", "1", "release", "--model", str(model_with_directions), "--out",
                        str(released), "--name", "tiny", "--ablation", f"same={model_with_directions}"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "docs" / "card.md"
    r = subprocess.run([str(TRAIN_CLI), "--threads", "1", "model-card", "--model", str(released), "--out", str(out),
                        "--projections", "2", "--slider-faces", "2", "--detect-samples", "8"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    figs = tmp_path / "docs" / "card"
    assert (figs / "grid.png").is_file() and (figs / "projection.png").is_file()
    for attr in ("age", "smile", "glasses"):
        assert (figs / f"slider-{attr}.png").is_file() and f"slider-{attr}.png" in text
    assert "slider-PC1.png" not in text and "named by eye" in text
    w, h = Image.open(figs / "grid.png").size
    assert w > 2 * h      # three seeds side by side, each a column per preview resolution (3) by four rows
    assert "| 0.25x @ 16 px |" in text and "@ 8 px" not in text and "Against *same*: +0.00 dB" in text
    assert "| directions | 120 measured samples |" in text and "| encoder |" in text
    assert "| teacher |" in text and "full, truncation 1" in text and "non-commercial" in text
    assert "| age |" in text and "specificity" in text and "## Where it falls short" in text
    assert (figs / "teacher.png").is_file() and "photo" in text
    r = subprocess.run([str(TRAIN_CLI), "release", "--model", str(model_with_directions), "--out", str(released),
                        "--ablation", "no-equals-sign"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "LABEL=MODEL" in r.stderr


def test_paired_teacher_is_the_teacher_stage_of_the_chain():
    from anycost_train.heldout import paired_teacher
    warm = {"config": {"stage": "teacher", "teacher": "gan-face-generate"}}
    adversarial = {"config": {"stage": "multires", "data": "teacher", "teacher": "gan-face-generate"}}
    assert paired_teacher({"training": {"config": {"stage": "adach"}, "init": warm}}) == "gan-face-generate"
    # the teacher's samples as data pair nothing with the model's z
    assert paired_teacher({"training": {"config": {"stage": "adach"}, "init": adversarial}}) == ""
    assert paired_teacher({}) == ""


def test_decoupling_mix_cancels_a_linear_response():
    from anycost_train.directions import decoupling_mix
    rng = np.random.default_rng(0)
    # 7 attributes, 7 basis directions: the slider (column 0) moves its attribute 2 sd and the others
    # up to 1 sd; the other columns are the other attributes' normals, each mostly its own attribute
    r = np.eye(7) + 0.3 * rng.standard_normal((7, 7))
    r[:, 0] = [0.8, 2.0, -0.7, 0.5, 1.0, -0.4, 0.3]
    r[1, 1:] = 0.3 * rng.standard_normal(6)
    own = 1
    before = np.abs(np.delete(r[:, 0], own)).max() / abs(r[own, 0])
    mixed = r @ decoupling_mix(r, own, ridge=1e-3)
    after = np.abs(np.delete(mixed, own)).max() / abs(mixed[own])
    assert before > 0.4 and after < 0.05 and abs(mixed[own] / r[own, 0] - 1) < 0.05
    # the ridge pulls toward the slider unchanged
    assert np.allclose(decoupling_mix(r, own, ridge=1e6), np.eye(7)[0], atol=1e-3)


def test_slider_score_prefers_a_visible_specific_slider():
    from anycost_train.directions import SliderReport, slider_score

    def report(own_sd, specificity):
        return SliderReport("age", "age", (0, 10), False, False, "samples", own_sd * 12, own_sd, {}, specificity)
    # a slider that barely moves its attribute loses to one that moves it four times as far at 2x
    assert slider_score(report(1.6, 2.0)) > slider_score(report(0.4, 5.3))
    # past the 3x bar only the movement counts; below it the side effects are charged in proportion
    assert slider_score(report(1.0, 9.0)) == slider_score(report(1.0, 3.0)) > slider_score(report(1.0, 1.5))
    assert slider_score(report(-0.5, 4.0)) == float("-inf")
