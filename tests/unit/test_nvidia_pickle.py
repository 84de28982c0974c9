"""NVIDIA StyleGAN2 network pickles: read without running their code, computing what NVIDIA's code
computes (the stylegan2-ada fixture, made by NVIDIA's own code), at any size, and refused with a
reason when they are something else."""
from __future__ import annotations

import copy
import copyreg
import io
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from anycost.cli import main as cli
from anycost.core.errors import CheckpointError
from anycost.formats.checkpoints import load_model
from anycost.formats.nvidia_pickle import PickleRefused, generator_from_pickle, read_network_pickle
from anycost.inference.fast import FastSynthesis
from anycost.models import Generator, GeneratorConfig

from ..conftest import fixture_path
from ..nvidia_pickles import nvidia_generator, write_pickle

FIXTURE = "stylegan2-ada/sg2ada_small_64.pkl"
EXPECTED = "stylegan2-ada/sg2ada_small_64-expected.pt"


@pytest.fixture(scope="module")
def fixture_pkl() -> Path:
    return fixture_path(FIXTURE)


@pytest.fixture(scope="module")
def expected() -> dict:
    return torch.load(fixture_path(EXPECTED), weights_only=True)


def test_reading_runs_nothing_the_pickle_carries(tmp_path, fixture_pkl, monkeypatch):
    marker = tmp_path / "ran"
    nets = read_network_pickle(fixture_pkl)
    # the same networks, now carrying code that would leave a file behind if it were executed
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(write_pickle({"G_ema": nets["G_ema"]}, module_src=f"open({str(marker)!r}, 'w').close()\n"))
    # NVIDIA's code importable, as it is where users ran it: its reconstruct call runs the carried source
    persistence = types.ModuleType("torch_utils.persistence")
    persistence._reconstruct_persistent_obj = lambda meta: exec(meta["module_src"], {})
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", persistence)
    pickle.loads(evil.read_bytes())         # what the usual loaders do: the carried code runs
    assert marker.exists()
    marker.unlink()
    g, _ = generator_from_pickle(evil)      # ours: the same file, nothing run
    assert not marker.exists() and g.cfg.resolution == 64
    assert set(nets) == {"G", "D", "G_ema", "augment_pipe", "training_set_kwargs"}
    assert nets["G_ema"].class_name == "Generator" and nets["training_set_kwargs"]["resolution"] == 64


def test_mapping_and_images_match_nvidias_own_code(fixture_pkl, expected):
    g, meta = generator_from_pickle(fixture_pkl)
    cfg = expected["config"]
    assert (g.cfg.resolution, g.cfg.style_dim, g.cfg.n_mlp, g.n_style) == (64, 64, 2, cfg["num_ws"])
    assert g.cfg.conv_clamp == 256 and meta["source"]["num_fp16_res"] == 4
    z = expected["z"]
    with torch.no_grad():
        w = g.latent_to_wplus(z)
        assert (w - expected["ws"]).abs().max() < 1e-5
        w7 = g.latent_to_wplus(z, truncation=0.7)
        assert (w7 - expected["ws_trunc0.7"]).abs().max() < 1e-5
        assert (g.synthesis(w, noise="const") - expected["img_const"]).abs().max() < 1e-4
        assert (g.synthesis(w7, noise="const") - expected["img_const_trunc0.7"]).abs().max() < 1e-4
        assert (g.synthesis(expected["ws"], noise="zero") - expected["img_none_noise"]).abs().max() < 1e-4
        fast = FastSynthesis(g)                      # the daemon's CPU path draws the same
        assert (fast(w[:1]) - expected["img_const"][:1]).abs().max() < 1e-4


def test_sample_takes_the_pickle_as_model(tmp_path, fixture_pkl, expected):
    np.save(tmp_path / "z.npy", expected["z"].numpy())
    for psi, key in ((1.0, "img_const"), (0.7, "img_const_trunc0.7")):
        out = tmp_path / f"out{psi}.npy"
        assert cli(["sample", "--model", str(fixture_pkl), "--z", str(tmp_path / "z.npy"), "--truncation", str(psi),
                    "--out", str(out)]) == 0
        assert np.abs(np.load(out) - expected[key].numpy()).max() < 1e-4


@pytest.mark.parametrize("cfg", [
    GeneratorConfig(32, {4: 48, 8: 40, 16: 24, 32: 16}, style_dim=32, n_mlp=3, conv_clamp=0.5),
    GeneratorConfig(128, {4: 16, 8: 16, 16: 16, 32: 12, 64: 8, 128: 8}, style_dim=24, n_mlp=1, lr_mlp=0.05),
], ids=["32px-3fc-clamp0.5", "128px-1fc"])
def test_any_size_width_and_depth_reads_back_exactly(tmp_path, cfg):
    torch.manual_seed(0)
    ours = Generator(cfg).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.1 * torch.randn_like(p))
        ours.w_avg.normal_(0, 0.3)
    f = tmp_path / "g.pkl"
    f.write_bytes(write_pickle({"G_ema": nvidia_generator(ours)}))
    g = load_model(f).generator
    assert g.cfg == cfg and g.cfg.conv_clamp == cfg.conv_clamp
    z = torch.randn(2, cfg.style_dim)
    with torch.no_grad():
        assert torch.equal(g(z, truncation=0.6), ours(z, truncation=0.6))
        if cfg.conv_clamp is not None:       # the clamp is active here, and both paths honour it
            unclamped = Generator(GeneratorConfig(cfg.resolution, cfg.channels, cfg.style_dim, cfg.n_mlp)).eval()
            unclamped.load_state_dict(g.state_dict())
            assert (unclamped(z) - g(z)).abs().max() > 0.1
            assert (FastSynthesis(g)(g.latent_to_wplus(z[:1])) - g(z[:1])).abs().max() < 1e-4


def _changed(fixture_pkl, tmp_path, change) -> Path:
    nets = copy.deepcopy(read_network_pickle(fixture_pkl))
    change(nets["G_ema"])
    out = tmp_path / "changed.pkl"
    out.write_bytes(write_pickle({"G_ema": nets["G_ema"]}))
    return out


def _stylegan3(g):
    syn = g.state["_modules"]["synthesis"]
    syn.state["_modules"] = {"input": syn.state["_modules"].pop("b4"), "L0_36_512": syn.state["_modules"].pop("b8")}


def _extra_tensor(g):
    g.child("mapping").state["_buffers"]["surprise"] = torch.zeros(3)


@pytest.mark.parametrize("change,words", [
    (_stylegan3, r"StyleGAN3 \(alias-free\)"),
    (lambda g: g.state["_init_kwargs"].update(c_dim=10), r"conditional generator \(c_dim=10\)"),
    (lambda g: g.state["_init_kwargs"].update(z_dim=32), "z has 32 dimensions and w 64"),
    (lambda g: g.state["_init_kwargs"]["synthesis_kwargs"].update(architecture="resnet"), "architecture 'resnet'"),
    (_extra_tensor, "does not know: mapping.surprise"),
])
def test_other_networks_are_refused_saying_what_they_are(tmp_path, fixture_pkl, change, words):
    with pytest.raises(PickleRefused, match=words):
        load_model(_changed(fixture_pkl, tmp_path, change))


def test_a_pickle_asking_for_anything_else_is_refused_naming_it(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps({"G_ema": os.system}, protocol=4))
    with pytest.raises(PickleRefused, match=r"refused: the pickle asks for (posix|nt)\.system, which an NVIDIA"):
        load_model(bad)
    bad.write_bytes(pickle.dumps({"G_ema": np.array([1, 2], dtype=object)}, protocol=4))
    with pytest.raises(PickleRefused, match="numpy.core.multiarray._reconstruct|numpy._core.multiarray._reconstruct"):
        load_model(bad)
    bad.write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(CheckpointError, match="not a readable network pickle"):
        load_model(bad)


def test_code_hidden_in_a_storage_or_behind_an_extension_code_is_refused(tmp_path):
    marker = tmp_path / "ran"

    class RunsCode:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    # the bytes of a "storage" that are themselves a pickle calling os.system
    inner = io.BytesIO()
    torch.save({"x": RunsCode()}, inner)
    hidden = tmp_path / "hidden.pkl"

    class Storage:
        def __reduce__(self):
            import torch.storage
            return (torch.storage._load_from_bytes, (inner.getvalue(),))

    hidden.write_bytes(pickle.dumps({"G_ema": Storage()}, protocol=4))
    with pytest.raises(CheckpointError):
        load_model(hidden)
    # a global reached through the copyreg extension registry instead of by name
    ext = tmp_path / "ext.pkl"
    copyreg.add_extension(os.system.__module__, "system", 0x7ffe)
    try:
        ext.write_bytes(pickle.dumps({"G_ema": os.system}, protocol=4))
        pickle.loads(ext.read_bytes())       # fills copyreg's cache, which the C unpickler reads first
        with pytest.raises(PickleRefused, match="EXT"):
            load_model(ext)
    finally:
        copyreg.remove_extension(os.system.__module__, "system", 0x7ffe)
    assert not marker.exists()
