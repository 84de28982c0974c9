"""Learning from a teacher generator: gan-face-generate's DCGAN (from its wheel), any model file as a
teacher, the teacher stage (regression, with and without a discriminator), teacher samples as data,
and the measured attributes the sliders are fitted to."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from anycost.formats.checkpoints import load_model
from anycost_train.config import load_config
from anycost_train.teachers import (
    DCGAN_INSTALL,
    DCGANFaces,
    GeneratorTeacher,
    TeacherSamples,
    open_teacher,
    teacher_latents,
)
from anycost_train.trainer import Trainer

from ..conftest import REPO, without_module

# a 32 px student whose z holds the DCGAN's 100 entries and 28 free ones
STUDENT = {"arch": "custom", "n_res": 3, "batch": 4, "log_every": 1, "sample_every": 1000, "checkpoint_every": 1000,
           "r1_every": 2, "generator": {"resolution": 32, "style_dim": 128, "n_mlp": 2,
                                        "channels": {"4": 32, "8": 32, "16": 16, "32": 8}}}


@pytest.fixture(scope="module")
def dcgan():
    return DCGANFaces()


def test_the_dcgan_teacher_draws_faces_from_its_wheel(dcgan):
    z = torch.randn(24, 100, generator=torch.Generator().manual_seed(3))
    x = dcgan.images(z)
    assert x.shape == (24, 3, 64, 64) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, dcgan.images(z))                      # eval mode: BatchNorm does not drift
    assert x[0].sub(x[1]).abs().mean() > 0.05                    # different latents, different faces
    from anycost_train.attributes import AttributeMeter
    meter = AttributeMeter(need_age=False)
    try:
        assert meter.found(x).mean() >= 0.8                      # the card measures 94 % on 100
    finally:
        meter.close()


def test_without_the_package_the_message_says_how_to_install(tmp_path):
    code = ("from anycost_train.teachers import open_teacher\n"
            "try:\n    open_teacher('gan-face-generate')\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                       env=dict(os.environ, PYTHONPATH=without_module(tmp_path, "gan_face_generate")))
    assert "TeacherUnavailable" in r.stdout and DCGAN_INSTALL in r.stdout, r.stdout + r.stderr
    with pytest.raises(RuntimeError, match="known teachers"):
        open_teacher(str(tmp_path / "missing.safetensors"))


def test_teacher_samples_are_deterministic_batches(dcgan):
    ds = TeacherSamples(dcgan, 32, seed=4)
    b = ds.batch(10, 3)
    assert b.shape == (3, 3, 32, 32) and torch.allclose(b[1], ds[11], atol=1e-6)
    assert not torch.equal(ds.batch(0, 1), TeacherSamples(dcgan, 32, seed=5).batch(0, 1))
    with pytest.raises(ValueError, match="at least as wide"):
        teacher_latents(torch.zeros(1, 64), dcgan)


def test_teacher_stage_regresses_onto_the_teacher_and_resumes_exactly(tmp_path):
    """G(z) learns teacher(z[:100]): the regression loss falls; with a discriminator beside it the run
    resumes to the same weights as one that never stopped."""
    tc = load_config(None, overrides={**STUDENT, "stage": "teacher", "teacher": "gan-face-generate", "iters": 40,
                                      "lr": 0.005, "mapping_lr_scale": 100.0})
    t = Trainer(tc, tmp_path / "r", progress=False)
    losses = [t.train_step()["g_loss"] for _ in range(40)]
    assert sum(losses[-10:]) < 0.85 * sum(losses[:10]), losses
    both = {**STUDENT, "stage": "teacher", "teacher": "gan-face-generate", "adv_weight": 0.1, "checkpoint_every": 2}
    straight = Trainer(load_config(None, overrides={**both, "iters": 4}), tmp_path / "a", progress=False)
    straight.run()
    assert "regression" in straight.train_step() and straight.tc.adv_weight > 0
    first = Trainer(load_config(None, overrides={**both, "iters": 2}), tmp_path / "b", progress=False)
    first.run()
    resumed = Trainer.resumed(tmp_path / "b", {"iters": 4}, progress=False)
    resumed.run()
    straight5 = Trainer(load_config(None, overrides={**both, "iters": 4}), tmp_path / "c", progress=False)
    straight5.run()
    for name in ("g", "d", "g_ema"):
        a, b = getattr(straight5, name).state_dict(), getattr(resumed, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    meta = load_model(tmp_path / "b" / "latest.safetensors").metadata["training"]
    assert meta["stage"] == "teacher" and meta["config"]["teacher"] == "gan-face-generate"


def test_feature_distillation_matches_the_teachers_activations(tmp_path):
    tc = load_config(None, overrides={**STUDENT, "stage": "teacher", "teacher": "gan-face-generate", "iters": 30,
                                      "feature_weight": 1.0, "lr": 0.005, "checkpoint_every": 30})
    t = Trainer(tc, tmp_path / "f", progress=False)
    assert sorted(int(r) for r in t.adapters) == [4, 8, 16, 32]
    feats = [t.train_step()["features"] for _ in range(30)]
    assert sum(feats[-8:]) < 0.9 * sum(feats[:8]), feats
    t.checkpoint()
    again = Trainer.resumed(tmp_path / "f", {}, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(again.adapters.state_dict().values(),
                                                 t.adapters.state_dict().values(), strict=True))
    with pytest.raises(ValueError, match="intermediate features"):
        Trainer(load_config(None, overrides={**STUDENT, "generator": dict(STUDENT["generator"], style_dim=256),
                                             "stage": "teacher", "teacher": "demo", "feature_weight": 1.0}),
                tmp_path / "g", progress=False)


def test_any_model_file_is_a_teacher_and_teacher_samples_are_stage_data(tiny_model_file, tmp_path):
    teacher = GeneratorTeacher(str(tiny_model_file))
    assert teacher.latent_dim == 64 and teacher.images(torch.zeros(2, 64)).shape == (2, 3, 64, 64)
    student = {**STUDENT, "generator": dict(STUDENT["generator"], style_dim=64), "teacher": str(tiny_model_file)}
    t = Trainer(load_config(None, overrides={**student, "stage": "teacher", "iters": 1}), tmp_path / "t",
                progress=False)
    z = torch.randn(2, 64)
    want = torch.nn.functional.adaptive_avg_pool2d(teacher.images(z), 32)
    assert torch.allclose(t.regression_target(z), want, atol=1e-6)
    adv = Trainer(load_config(None, overrides={**student, "stage": "multires", "data": "teacher", "iters": 2}),
                  tmp_path / "m", progress=False)
    real = adv.real_batch(0)
    assert real.shape == (4, 3, 32, 32) and torch.equal(real, adv.real_batch(0))
    assert adv.train_step()["d_loss"] > 0
    with pytest.raises(ValueError, match="need a teacher"):
        load_config(None, overrides={**STUDENT, "stage": "teacher"})


def test_measured_attributes_of_teacher_faces(dcgan):
    from anycost_train.attributes import ATTRIBUTES, AttributeMeter
    meter = AttributeMeter()
    try:
        m = meter.measure(dcgan.images(torch.randn(12, 100, generator=torch.Generator().manual_seed(8))))
    finally:
        meter.close()
    found = m["found"]
    assert found.sum() >= 9 and set(ATTRIBUTES) <= set(m)
    assert np.all((m["age"][found] >= 0) & (m["age"][found] <= 100))
    assert np.all((m["gender"][found] >= 0) & (m["gender"][found] <= 1))
    assert np.all(np.abs(m["yaw"][found]) < 90) and np.all(m["mouth_open"][found] >= 0)
    assert np.isnan(m["age"][~found]).all()
    assert np.nanstd(m["yaw"]) > 1 and np.nanstd(m["age"]) > 1     # they vary between faces
