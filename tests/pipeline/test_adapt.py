"""`anycost-train adapt`: a StyleGAN2 without its dataset made an anycost generator, on the NVIDIA
fixture (its sub-generators start inconsistent: it was never trained for them)."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from anycost.editing.consistency import consistency_figures
from anycost.formats.checkpoints import load_model
from anycost_train.adapt_report import drift
from anycost_train.config import load_config
from anycost_train.trainer import Trainer

from ..conftest import fixture_path

TRAIN_CLI = Path(sys.executable).with_name("anycost-train")
PICKLE = "stylegan2-ada/sg2ada_small_64.pkl"


def _mean_psnr(g) -> float:
    return statistics.mean(c["psnr"] for c in consistency_figures(g, n=16, seed=7) if c["ratio"] < 1)


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    out = tmp_path_factory.mktemp("adapt") / "small-anycost.safetensors"
    r = subprocess.run([str(TRAIN_CLI), "--threads", "1", "adapt", "--model", str(fixture_path(PICKLE)),
                        "--out", str(out), "--iters", "150", "--batch", "4", "--lr", "0.002", "--ema-kimg", "0.05",
                        "--anchor-weight", "10",
                        "--checkpoint-every", "75", "--sample-every", "150", "--log-every", "25"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def test_adapting_makes_the_sub_generators_agree_and_keeps_the_full_one(adapted):
    original = load_model(fixture_path(PICKLE)).generator
    model = load_model(adapted)
    before, after = _mean_psnr(original), _mean_psnr(model.generator)
    assert after > before + 1.0, (before, after)
    assert drift(original, model.generator, n=16) > 22       # the anchor holds the full generator near the original
    meta = model.metadata
    assert meta["sub_generators"] is True and meta["figures"]["consistency"]      # the daemon ranks by these
    assert meta["training"]["stage"] == "adapt" and meta["source_layout"] == "nvidia-pickle"   # kept from the original
    assert model.generator.cfg.conv_clamp == 256 and meta["name"] == "sg2ada_small_64-anycost"
    log = [json.loads(line) for line in (adapted.with_suffix(".run") / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 150 and all(r["img_per_s"] > 0 for r in log)


def test_an_adapted_model_may_be_larger_than_what_ships_in_the_package(tmp_path, monkeypatch):
    from anycost_train import release
    from anycost_train.cli import main
    monkeypatch.setattr(release, "MAX_SHIPPED_BYTES", 1000)
    out = tmp_path / "big.safetensors"
    assert main(["--threads", "1", "adapt", "--model", str(fixture_path(PICKLE)), "--out", str(out), "--iters", "2",
                 "--batch", "2", "--checkpoint-every", "2"]) == 0
    assert out.stat().st_size > 1000
    with pytest.raises(ValueError, match="may ship inside the package"):     # a built-in model still may not
        release.release(out, tmp_path / "shipped.safetensors", "x")


def test_without_the_anchor_the_full_generator_drifts_further(tmp_path):
    pkl = str(fixture_path(PICKLE))
    common = {"stage": "adapt", "init": pkl, "iters": 40, "batch": 4, "lr": 0.002, "checkpoint_every": 40,
              "sample_every": 1000, "log_every": 20, "ema_kimg": 0.05}
    drifts = {}
    for anchor in (0.0, 10.0):
        cfg = load_config(overrides={**common, "anchor_weight": anchor, "arch": "custom",
                                     "generator": load_model(pkl).generator.cfg.to_dict()})
        t = Trainer(cfg, tmp_path / f"anchor{anchor}", progress=False)
        t.run()
        drifts[anchor] = drift(load_model(pkl).generator, t.g, n=16)
    assert drifts[10.0] > drifts[0.0] + 3, drifts


def test_adapt_resumes_bit_for_bit(tmp_path):
    pkl = str(fixture_path(PICKLE))
    gcfg = load_model(pkl).generator.cfg.to_dict()
    base = {"stage": "adapt", "init": pkl, "arch": "custom", "generator": gcfg, "batch": 2, "checkpoint_every": 3,
            "sample_every": 1000, "log_every": 3, "adv_weight": 0.1, "data": "teacher", "teacher": pkl}
    straight = Trainer(load_config(overrides={**base, "iters": 6}), tmp_path / "a", progress=False)
    straight.run()
    Trainer(load_config(overrides={**base, "iters": 3}), tmp_path / "b", progress=False).run()
    resumed = Trainer.resumed(tmp_path / "b", {"iters": 6}, progress=False)
    resumed.run()
    for name in ("g", "d", "g_ema", "teacher"):
        a, b = getattr(straight, name).state_dict(), getattr(resumed, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name


@pytest.mark.skipif(sys.platform != "linux", reason="torchrun's gloo backend on Linux")
def test_adapt_under_torchrun(tmp_path):
    out = tmp_path / "ddp.safetensors"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "anycost_train.cli", "adapt", "--model", str(fixture_path(PICKLE)), "--out", str(out),
                        "--iters", "4", "--batch", "2", "--checkpoint-every", "4"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    run = out.with_suffix(".run")
    sums = [(run / f"replica-rank{k}.txt").read_text().split() for k in range(2)]
    assert sums[0] == sums[1]
    assert load_model(out).metadata["training"]["world"] == 2
