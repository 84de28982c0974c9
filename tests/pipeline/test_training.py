"""The training pipeline on a tiny configuration: data, both stages, exact resume, torchrun."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from anycost.formats.checkpoints import load_model
from anycost_train.config import load_config
from anycost_train.data import ImageFolder, ProceduralFaces, read_labels
from anycost_train.discriminator import MultiResDiscriminator
from anycost_train.procedural_faces import ATTRIBUTES, draw_face, face, sample_params
from anycost_train.subgenerators import arch_dim, arch_vector
from anycost_train.trainer import Trainer

TRAIN_CLI = Path(sys.executable).with_name("anycost-train")


def run_train_cli(*args, timeout=600):
    return subprocess.run([str(TRAIN_CLI), *args], capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------------------ data

def test_faces_are_seeded_labelled_and_varied():
    a, la = face(3, 64)
    b, lb = face(3, 64)
    c, _ = face(4, 64)
    assert np.array_equal(np.asarray(a), np.asarray(b)) and la == lb
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    assert set(la) == set(ATTRIBUTES) and a.size == (64, 64)
    assert face(3, 200)[0].size == (200, 200)


@pytest.mark.parametrize("attr,low,high", [("smile", -1.0, 1.0), ("glasses", 0, 1), ("age", 0.0, 1.0),
                                           ("hair_light", 0.0, 1.0)])
def test_each_attribute_changes_the_picture(attr, low, high):
    import random
    p = sample_params(random.Random(11))
    setattr(p, attr, low)
    x0 = np.asarray(draw_face(p, 96), dtype=np.float32)
    setattr(p, attr, high)
    x1 = np.asarray(draw_face(p, 96), dtype=np.float32)
    assert np.abs(x1 - x0).mean() > 0.3


def test_make_dataset_and_image_folder_skips_bad_files(tmp_path):
    r = run_train_cli("make-dataset", "--out", str(tmp_path / "ds"), "--n", "5", "--resolution", "48")
    assert r.returncode == 0, r.stderr
    files, labels = read_labels(tmp_path / "ds")
    assert len(files) == 5 and labels.shape == (5, len(ATTRIBUTES)) and all(f.is_file() for f in files)
    (tmp_path / "ds" / "sub").mkdir()
    (tmp_path / "ds" / "sub" / "broken.png").write_bytes(b"not a png")
    folder = ImageFolder(tmp_path / "ds", 32, flip=False)
    assert len(folder) == 6
    items = [folder[i] for i in range(len(folder))]
    assert all(x.shape == (3, 32, 32) and -1 <= x.min() and x.max() <= 1 for x in items)
    assert len(folder.skipped) == 1
    assert torch.equal(ProceduralFaces(32)[7], ProceduralFaces(32, seed=7)[0])


# ---------------------------------------------------------------------------- stages

@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    out = tmp_path_factory.mktemp("stage1")
    t = Trainer(load_config("tiny"), out, progress=False)
    path = t.run()
    return out, path


def test_stage1_writes_model_samples_log_and_state(stage1):
    out, path = stage1
    m = load_model(path)
    assert m.metadata["training"]["stage"] == "multires" and m.metadata["training"]["step"] == 4
    assert m.metadata["training"]["commit"]
    assert len(list((out / "samples").glob("*.png"))) == 2 and (out / "train-state.pt").is_file()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert all(r["res"] in (32, 16, 8) and np.isfinite(r["d_loss"]) for r in log)


def test_stage2_sorts_channels_without_changing_the_full_generator(stage1, tmp_path):
    _, path = stage1
    tc = load_config("tiny", overrides={"stage": "adach", "init": str(path)})
    t = Trainer(tc, tmp_path, progress=False)
    src = load_model(path).generator
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (t.g(z) - src(z)).abs().max() < 1e-4
        assert (t.teacher(z) - src(z)).abs().max() < 1e-6
    stats = [t.train_step() for _ in range(3)]
    assert all(np.isfinite(s["consistency"]) for s in stats)
    assert len({s["channels"] for s in stats}) > 1 or stats[0]["channels"] < sum(t.gcfg.full_channels)


def test_conditioned_discriminator_depends_on_the_configuration():
    tc = load_config("tiny")
    cfg = tc.generator_config()
    torch.manual_seed(0)
    d = MultiResDiscriminator(cfg, 3, arch_dim(cfg))
    x = torch.randn(2, 3, 32, 32)
    full = arch_vector([1.0] * cfg.n_channel_entries).expand(2, -1)
    quarter = arch_vector([0.25] * cfg.n_channel_entries).expand(2, -1)
    with torch.no_grad():
        assert torch.equal(d(x, full), d(x, quarter))           # zero-initialised: starts as identity
        for name, p in d.named_parameters():
            if ".mod." in name:
                p.normal_(0, 0.3)
        assert (d(x, full) - d(x, quarter)).abs().max() > 1e-3
    with pytest.raises(ValueError):
        d(x)


def test_resume_continues_bit_for_bit(tmp_path):
    straight = Trainer(load_config("tiny", overrides={"iters": 6, "checkpoint_every": 3}), tmp_path / "a",
                       progress=False)
    straight.run()
    first = Trainer(load_config("tiny", overrides={"iters": 3, "checkpoint_every": 3}), tmp_path / "b", progress=False)
    first.run()
    resumed = Trainer.resumed(tmp_path / "b", {"iters": 6}, progress=False)
    assert resumed.step == 3 and resumed.tc.checkpoint_every == 3      # the run's own interval is kept
    resumed.run()
    for name in ("g", "d", "g_ema"):
        a, b = getattr(straight, name).state_dict(), getattr(resumed, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert straight.g_opt.state_dict()["state"][0]["exp_avg"].equal(resumed.g_opt.state_dict()["state"][0]["exp_avg"])
    history = load_model(tmp_path / "b" / "latest.safetensors").metadata["training"]["history"]
    assert [h["step"] for h in history] == [0, 3] and all(h["command"] and h["commit"] for h in history)
    with pytest.raises(ValueError, match="can change only"):
        Trainer.resumed(tmp_path / "b", {"iters": 9, "batch": 2}, progress=False)
    # an annealing phase: the resumed run's lower rate reaches both optimizers (the state file has the old)
    annealed = Trainer.resumed(tmp_path / "b", {"iters": 7, "lr": 0.0005, "ema_kimg": 20.0}, progress=False)
    scale = annealed.tc.mapping_lr_scale
    assert [g["lr"] for g in annealed.g_opt.param_groups] == [0.0005, 0.0005 * scale]
    assert [g["lr"] for g in annealed.d_opt.param_groups] == [0.0005] and annealed.tc.ema_kimg == 20.0
    assert resumed.g_opt.param_groups[0]["lr"] == straight.tc.lr


def test_torchrun_two_processes_keep_replicas_identical(tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "anycost_train.cli", "train", "--preset", "tiny", "--iters", "4", "--out", str(out)],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    sums = [(out / f"replica-rank{k}.txt").read_text().split() for k in range(2)]
    assert sums[0] == sums[1] and sums[0][0] == "4"
    m = load_model(out / "latest.safetensors")
    assert m.metadata["training"]["world"] == 2 and m.metadata["training"]["images"] == 4 * 4 * 2


def test_bench_and_config_errors(tmp_path):
    r = run_train_cli("--threads", "1", "bench", "--preset", "tiny", "--iters", "1", "--out", str(tmp_path / "b.json"))
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "b.json").read_text())
    assert set(data["stages"]) == {"renderer", "multires", "adach"} and data["stages"]["adach"]["images_per_s"] > 0
    (tmp_path / "bad.toml").write_text('stage = "multires"\nwings = 2\n')
    r = run_train_cli("train", "--config", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "wings" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "ok.toml").write_text('batch = 2\niters = 1\narch = "custom"\nn_res = 3\n'
                                      '[generator]\nresolution = 32\nstyle_dim = 16\nn_mlp = 1\n'
                                      'channels = {"4" = 16, "8" = 16, "16" = 8, "32" = 8}\n')
    r = run_train_cli("train", "--config", str(tmp_path / "ok.toml"), "--out", str(tmp_path / "y"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "y" / "config.json").read_text())["batch"] == 2
    r = run_train_cli("train", "--preset", "tiny", "--stage", "adach", "--out", str(tmp_path / "z"))
    assert r.returncode == 2 and "--init" in r.stderr


def test_renderer_warm_start_learns_and_seeds_stage1(tmp_path):
    """The renderer stage regresses G(z) onto face(Phi(z[:16])): its loss falls; stage 1 can start from it."""
    tc = load_config("tiny", overrides={"stage": "renderer", "iters": 40, "batch": 8, "lr": 0.005,
                                        "checkpoint_every": 40, "sample_every": 40})
    t = Trainer(tc, tmp_path / "r", progress=False)
    losses = [t.train_step()["g_loss"] for _ in range(40)]
    assert sum(losses[-10:]) < 0.8 * sum(losses[:10])
    path = t.checkpoint()
    s1 = Trainer(load_config("tiny", overrides={"init": str(path)}), tmp_path / "s1", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(s1.g.state_dict().values(), t.g_ema.state_dict().values(),
                                                 strict=True))
    s1.tc.iters = 1                                  # one step, so the stage-1 file records where it started
    trained = load_model(s1.run()).metadata["training"]
    assert trained["stage"] == "multires" and trained["init"]["stage"] == "renderer"
    assert trained["init"]["commit"] == trained["commit"] and trained["command"]
    with pytest.raises(ValueError, match="procedural"):
        load_config("tiny", overrides={"stage": "renderer", "data": str(tmp_path)})
