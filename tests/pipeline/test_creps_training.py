"""`anycost-train creps`: the adversarial objective, distillation into an anycost model's W space,
exact resume and torchrun, on tiny configurations."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from anycost.formats.checkpoints import load_model, save_model
from anycost.models import Generator, GeneratorConfig
from anycost.models.creps import CrepsConfig
from anycost.models.encoder import Encoder, EncoderConfig
from anycost_train.config import load_creps_config
from anycost_train.creps_training import CrepsTrainer

from .test_training import run_train_cli

TINY_CREPS = CrepsConfig(16, style_dim=32, n_mlp=2, channel_base=512, channel_max=32, rank=4, pixel_dim=8,
                         decoder_hidden=(8, 8, 8), head_widths=(8, 8))


def test_adversarial_run_writes_model_samples_log_and_resumes_bit_for_bit(tmp_path):
    over = {"iters": 4, "checkpoint_every": 2}
    straight = CrepsTrainer(load_creps_config("creps-tiny", None, over), tmp_path / "a", progress=False)
    straight.run()
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 4 and all("r1" in r for r in log[::2]) and any("pl" in r for r in log)
    assert {r["res"] for r in log} <= {16, 8} and all(r["d_loss"] > 0 for r in log)
    assert (tmp_path / "a" / "samples" / "creps-0000004.png").is_file()
    model = load_model(tmp_path / "a" / "latest.safetensors", kind="creps")
    assert model.metadata["training"]["step"] == 4 and model.encoder is None
    with torch.no_grad():
        assert model.generator.render(model.generator.map(torch.randn(1, 32)), (24, 40)).shape == (1, 3, 24, 40)

    first = CrepsTrainer(load_creps_config("creps-tiny", None, {"iters": 2, "checkpoint_every": 2}),
                         tmp_path / "b", progress=False)
    first.run()
    resumed = CrepsTrainer.resumed(tmp_path / "b", {"iters": 4}, progress=False)
    assert resumed.step == 2
    resumed.run()
    for name in ("g", "d", "g_ema"):
        a, b = getattr(straight, name).state_dict(), getattr(resumed, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    with pytest.raises(ValueError, match="can change only"):
        CrepsTrainer.resumed(tmp_path / "b", {"iters": 9, "batch": 2}, progress=False)
    annealed = CrepsTrainer.resumed(tmp_path / "b", {"iters": 5, "lr": 0.0001}, progress=False)
    assert [g["lr"] for g in annealed.g_opt.param_groups] == [0.0001]


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    """A 16 px anycost model with an encoder and one direction: the W space to share."""
    torch.manual_seed(3)
    g = Generator(GeneratorConfig(16, {4: 32, 8: 32, 16: 16}, style_dim=32, n_mlp=2))
    g.update_w_avg(500)
    enc = Encoder(EncoderConfig.small(g.n_style, 32, 16))
    vec = torch.randn(32)
    meta = {"name": "teacher", "directions": [{"name": "smile", "rows": [0, g.n_style], "min": -3, "max": 3}]}
    path = tmp_path_factory.mktemp("teacher") / "teacher.safetensors"
    save_model(path, g, meta, {"directions.smile": vec / vec.norm()}, encoder=enc)
    return path


def test_distillation_shares_the_teacher_w_space_and_learns(teacher_file, tmp_path):
    over = {"teacher": str(teacher_file), "adv_weight": 0.0, "pl_weight": 0.0, "iters": 150, "batch": 4,
            "lr": 0.01, "log_every": 10, "checkpoint_every": 150, "sample_every": 150, "mixing": 0.5}
    t = CrepsTrainer(load_creps_config("creps-tiny", None, over), tmp_path / "d", progress=False)
    assert t.d is None and not any(p.requires_grad for p in t.g.mapping.parameters())
    z = torch.randn(3, 32)
    with torch.no_grad():                         # the same mapping network: the same w for every z
        assert torch.allclose(t.g.map(z)[:, 0], t.teacher.generator.mapping(z), atol=1e-6)
    held_out = torch.randn(16, 1, 32, generator=torch.Generator().manual_seed(99))

    def error() -> float:                         # L1 to the teacher on latents never trained on
        with torch.no_grad():
            wplus = t.teacher.generator.latent_to_wplus(held_out)
            mine = t.g.render(t.g.wplus_from_anycost(wplus), (16, 16))
            return (mine - t.teacher.generator.synthesis(wplus)).abs().mean().item()

    before = error()
    t.run()
    assert error() < 0.8 * before, (before, error())

    model = load_model(tmp_path / "d" / "latest.safetensors", kind="creps")
    assert model.metadata["w_space"]["model"] == "teacher"
    g = model.generator
    assert model.metadata["directions"][0]["rows"] == [0, g.cfg.num_ws]     # covers the head's row too
    assert torch.equal(model.extra_tensors["directions.smile"], load_creps_teacher_direction(teacher_file))
    with torch.no_grad():
        guess = model.encoder(torch.rand(1, 3, 16, 16) * 2 - 1)
        ws = g.wplus_from_anycost(guess)
    assert guess.shape[1] == g.cfg.num_ws - 1 and ws.shape[1] == g.cfg.num_ws and torch.equal(ws[:, -1], ws[:, -2])


def test_native_resolution_patch_steps(teacher_file, tmp_path):
    """A patch step draws only a patch of the native grid; it must be that crop of the whole image
    (so the teacher's crop is its target), and training on patches alone runs and moves G."""
    over = {"teacher": str(teacher_file), "adv_weight": 0.0, "pl_weight": 0.0, "iters": 6, "batch": 2,
            "log_every": 1, "checkpoint_every": 6, "sample_every": 6, "patch": 8, "patch_prob": 1.0}
    t = CrepsTrainer(load_creps_config("creps-tiny", None, over), tmp_path / "p", progress=False)
    g = t.g
    with torch.no_grad():
        ws = g.map(torch.randn(2, 32))
        patch = g.pixels(g.prepare(ws, 16, 16), ws, 5, 13, 3, 11)
        assert torch.allclose(patch, g.render(ws, (16, 16))[:, :, 5:13, 3:11], atol=1e-6)
    before = [p.detach().clone() for p in g.parameters() if p.requires_grad]
    t.run()
    log = [json.loads(line) for line in (tmp_path / "p" / "log.jsonl").read_text().splitlines()]
    assert {r["res"] for r in log} == {"8@16"} and all(0 < r["distill"] < 10 for r in log)
    after = [p for p in g.parameters() if p.requires_grad]
    assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True) if b.grad is not None)


def test_encoded_latents_are_the_teachers_encoder_guesses(teacher_file, tmp_path):
    """With `encoded`, part of each batch's W+ are the teacher's encoder guesses of faces (here the
    teacher model's own samples: it names no source generator), and the targets are its images of them."""
    over = {"teacher": str(teacher_file), "adv_weight": 0.0, "pl_weight": 0.0, "iters": 2, "batch": 4,
            "log_every": 1, "checkpoint_every": 2, "sample_every": 2, "encoded": 0.5}
    t = CrepsTrainer(load_creps_config("creps-tiny", None, over), tmp_path / "e", progress=False)
    assert t.faces is None
    gen_state = t.gen.get_state()
    ws, target = t.latents(4)
    t.gen.set_state(gen_state)
    z = torch.randn(4, 1, 32, generator=t.gen)          # the mapped latents are drawn first
    tg = t.teacher.generator
    with torch.no_grad():
        guess = t.teacher.encoder(tg(torch.randn(2, 32, generator=t.gen)))
        assert torch.allclose(ws[:2], t.g.wplus_from_anycost(guess), atol=1e-6)
        assert torch.allclose(ws[2:], t.g.wplus_from_anycost(tg.latent_to_wplus(z[2:])), atol=1e-6)
        assert torch.allclose(target, tg.synthesis(torch.cat([guess, tg.latent_to_wplus(z[2:])])), atol=1e-5)
    t.run()
    with pytest.raises(ValueError, match="encoded is a share"):
        load_creps_config("creps-tiny", None, {"encoded": 0.5})


def load_creps_teacher_direction(path):
    from anycost.formats.checkpoints import load_model
    return load_model(path).extra_tensors["directions.smile"]


def test_cli_and_config_errors(teacher_file, tmp_path):
    r = run_train_cli("creps", "--preset", "creps-tiny", "--adv-weight", "0", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "adv_weight" in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(ValueError, match="patches need a teacher"):
        load_creps_config("creps-tiny", None, {"patch": 8, "patch_prob": 0.5})
    r = run_train_cli("creps", "--preset", "creps-tiny", "--resolutions", "12", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "resolutions" in r.stderr
    r = run_train_cli("creps", "--arch", "creps-demo", "--teacher", str(teacher_file), "--iters", "1",
                      "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "must match to share W" in r.stderr
    r = run_train_cli("--threads", "1", "creps", "--preset", "creps-tiny", "--iters", "2", "--out", str(tmp_path / "y"))
    assert r.returncode == 0, r.stderr
    r = run_train_cli("creps", "--resume", "--preset", "creps-tiny", "--out", str(tmp_path / "y"))
    assert r.returncode == 2 and "drop --preset" in r.stderr


def test_torchrun_two_processes_keep_replicas_identical(tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "anycost_train.cli", "creps", "--preset", "creps-tiny", "--iters", "2",
                        "--out", str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    sums = [(out / f"replica-rank{k}.txt").read_text().split() for k in range(2)]
    assert sums[0] == sums[1] and sums[0][0] == "2"
    assert load_model(out / "latest.safetensors", kind="creps").metadata["training"]["images"] == 2 * 2 * 2


def test_release_and_card_of_a_distilled_model(teacher_file, tmp_path):
    """creps-release measures into the file and keeps both lineages; creps-card writes the page."""
    from anycost.formats.checkpoints import load_model
    w_space = tmp_path / "teacher.safetensors"
    shutil.copy(teacher_file, w_space)
    over = {"teacher": str(w_space), "adv_weight": 0.0, "pl_weight": 0.0, "iters": 2, "batch": 2,
            "checkpoint_every": 2, "sample_every": 2}
    CrepsTrainer(load_creps_config("creps-tiny", None, over), tmp_path / "r", progress=False).run()
    # the W-space model's sliders are fitted again after the CREPS run: the release carries the new ones
    m = load_model(w_space)
    new_smile = -m.extra_tensors["directions.smile"]
    save_model(w_space, m.generator, m.metadata, {"directions.smile": new_smile}, encoder=m.encoder)
    shipped = tmp_path / "shipped.safetensors"
    r = run_train_cli("--threads", "1", "creps-release", "--model", str(tmp_path / "r" / "latest.safetensors"),
                      "--out", str(shipped), "--name", "tiny-creps")
    assert r.returncode == 0, r.stderr
    model = load_model(shipped, kind="creps")
    assert torch.allclose(model.extra_tensors["directions.smile"].float(), new_smile, atol=1e-3)   # float16 file
    figures = model.metadata["figures"]
    assert model.metadata["name"] == "tiny-creps" and model.metadata["lineage"][-1]["stage"] == "creps"
    assert figures["agreement"]["n"] == 32 and [row["size"] for row in figures["scale_consistency"]] == [
        32, 64, 128, 256, 512]
    assert all(row["creps_psnr"] > 20 and row["anycost_psnr"] > 0 for row in figures["scale_consistency"])
    page = tmp_path / "card.md"
    r = run_train_cli("--threads", "1", "creps-card", "--model", str(shipped), "--out", str(page),
                      "--latents", "2", "--faces", "1", "--steps", "2")
    assert r.returncode == 0, r.stderr
    text = page.read_text()
    assert "| 512 |" in text and "Agreement with `teacher`" in text
    assert all((tmp_path / "card" / f).is_file() for f in ("sizes.png", "pairs.png", "zoom.png"))
