"""Our format round-trips; official/rosinality layouts load by shape; unsafe or broken files are refused."""
import os
import pickle

import pytest
import torch

from anycost.core.errors import CheckpointError
from anycost.formats.checkpoints import infer_config, load_model, save_model
from anycost.models import Generator, GeneratorConfig


def small_generator(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = GeneratorConfig.from_multiplier(kw.pop("resolution", 32), kw.pop("mult", 0.125), kw.pop("cmax", 32),
                                          style_dim=kw.pop("style_dim", 32), n_mlp=kw.pop("n_mlp", 2))
    g = Generator(cfg).eval()
    g.update_w_avg(100)
    return g


def test_our_format_round_trip_is_exact(tmp_path):
    g = small_generator()
    meta = {"name": "tiny", "attributes": [{"name": "smile", "range": [-3, 3]}]}
    path = save_model(tmp_path / "tiny.safetensors", g, meta, extra_tensors={"directions.smile": torch.ones(32)})
    m = load_model(path)
    assert m.metadata["attributes"] == meta["attributes"] and m.name == "tiny"
    assert m.generator.cfg == g.cfg
    assert torch.equal(m.extra_tensors["directions.smile"], torch.ones(32))
    z = torch.randn(2, 32)
    with torch.no_grad():
        assert torch.equal(m.generator(z, channels=0.5), g(z, channels=0.5))


def test_smallest_preview_resolution_travels_with_the_model(tmp_path):
    g = Generator(GeneratorConfig(64, {4: 8, 8: 8, 16: 8, 32: 8, 64: 8}, style_dim=16, n_mlp=1, elastic_min=16))
    assert g.cfg.elastic_resolutions == [64, 32, 16]
    assert GeneratorConfig(64, {4: 8, 8: 8, 16: 8, 32: 8, 64: 8}, style_dim=16).elastic_resolutions == [64, 32, 16, 8]
    m = load_model(save_model(tmp_path / "m.safetensors", g, {"name": "m"}))
    assert m.generator.cfg.elastic_resolutions == [64, 32, 16]


@pytest.mark.parametrize("length_bytes", [b"\x80", b"PK"])
def test_header_length_that_looks_like_a_pickle_or_zip_signature(tmp_path, length_bytes):
    """A safetensors header length starting with 0x80 (pickle) or "PK" (zip) is still our format."""
    g = small_generator()
    path = tmp_path / "m.safetensors"

    def header_length(pad):
        save_model(path, g, {"name": "x" * pad})
        return int.from_bytes(path.read_bytes()[:8], "little")

    base, want = header_length(0), int.from_bytes(length_bytes, "little")
    modulus = 256 ** len(length_bytes)
    target = base + (want - base) % modulus              # the first length >= base with those low bytes
    for pad in range(max(0, target - base - 8), target - base + 9):   # the header is padded to 8 bytes
        if header_length(pad) == target:
            break
    else:
        pytest.fail("no padding gave the wanted header length")
    assert path.read_bytes()[:len(length_bytes)] == length_bytes
    assert load_model(path).metadata["name"] == "x" * pad


def test_half_precision_storage(tmp_path):
    g = small_generator()
    full = save_model(tmp_path / "f.safetensors", g)
    half = save_model(tmp_path / "h.safetensors", g, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    z = torch.randn(2, 32)
    with torch.no_grad():
        assert (load_model(half).generator(z) - g(z)).abs().max() < 0.05


def test_rosinality_layout_of_another_shape_loads(tmp_path):
    """Any checkpoint in the official key layout: architecture read off shapes, same images."""
    g = small_generator(resolution=64, mult=0.25, cmax=48, style_dim=48, n_mlp=3)
    path = tmp_path / "community.pt"
    torch.save({"g_ema": g.state_dict(), "d": {"x": torch.zeros(1)}}, path)
    m = load_model(path)
    assert m.generator.cfg.channels == g.cfg.channels and m.generator.cfg.n_mlp == 3
    z = torch.randn(1, 48)
    with torch.no_grad():
        assert torch.equal(m.generator(z), g(z))
    # rosinality's conversion of NVIDIA's networks keeps their mean w beside g_ema: truncation uses it
    sd = {k: v for k, v in g.state_dict().items() if k != "w_avg"}
    centre = torch.randn(48)
    torch.save({"g_ema": sd, "latent_avg": centre}, path)
    assert torch.equal(load_model(path).generator.w_avg, centre)


class _RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {_RunsCode.marker}",))


def test_checkpoint_that_runs_code_is_refused(tmp_path):
    _RunsCode.marker = tmp_path / "pwned"
    g = small_generator()
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": g.state_dict(), "payload": _RunsCode()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_model(path)
    assert not _RunsCode.marker.exists()
    # the same as a legacy (non-zip) pickle
    legacy = tmp_path / "evil-legacy.pt"
    with open(legacy, "wb") as f:
        pickle.dump({"payload": _RunsCode()}, f, protocol=2)
    with pytest.raises(CheckpointError, match="refused|not a readable"):
        load_model(legacy)
    assert not _RunsCode.marker.exists()


@pytest.mark.parametrize("content", [b"", b"garbage" * 100, b"PK\x03\x04broken zip",
                                     b"\x10\x00\x00\x00\x00\x00\x00\x00{not json"])
def test_corrupt_files_give_clear_errors(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError):
        load_model(path)


def test_truncated_model_file(tmp_path):
    path = save_model(tmp_path / "m.safetensors", small_generator())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable model file"):
        load_model(path)


def test_newer_format_version_is_refused(tmp_path):
    import json

    from safetensors.torch import load_file, save_file
    path = save_model(tmp_path / "m.safetensors", small_generator())
    tensors = load_file(str(path))
    save_file(tensors, str(path), metadata={"anycost": json.dumps({"format": "anycost-editor", "version": 99})})
    with pytest.raises(CheckpointError, match="newer"):
        load_model(path)


def test_wrong_content_is_named(tmp_path):
    path = tmp_path / "encoder.pt"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(2, 3, 7, 7)}}, path)
    with pytest.raises(CheckpointError, match="no generator weights"):
        load_model(path)
    with pytest.raises(CheckpointError):
        infer_config({"style.1.weight": torch.zeros(4, 4)})


# ------------------------------------------------------------------ one record, one loader, one resolver

def test_one_loader_and_resolver_for_both_kinds(tmp_path):
    from anycost.formats.checkpoints import Model
    from anycost.formats.creps import BUILTIN_CREPS_DEMO, save_creps
    from anycost.formats.registry import open_model

    creps = open_model("random:creps-demo:3", kind=None)
    assert isinstance(creps, Model) and creps.kind == "creps" and creps.metadata["untrained"]
    path = save_creps(tmp_path / "c.safetensors", creps.generator, {"name": "c"})
    back = load_model(path, kind=None)
    assert back.kind == "creps" and back.name == "c"
    assert all(torch.equal(a, b) for a, b in zip(back.generator.state_dict().values(),
                                                 creps.generator.state_dict().values(), strict=True))
    assert load_model(path, kind="creps").kind == "creps"
    with pytest.raises(CheckpointError, match="is a CREPS model .*this needs an anycost generator"):
        load_model(path)                                            # the default: an anycost generator
    with pytest.raises(CheckpointError, match="is a CREPS model"):
        open_model("creps-demo")
    if BUILTIN_CREPS_DEMO.is_file():
        assert open_model("creps-demo", kind="creps").kind == "creps"
    demo = open_model("demo", kind=None)
    assert demo.kind == "anycost" and open_model(str(path), kind=None).kind == "creps"
    with pytest.raises(CheckpointError, match="is an anycost generator .*this needs a CREPS model"):
        open_model("demo", kind="creps")
    with pytest.raises(CheckpointError, match="unknown CREPS architecture"):
        open_model("random:creps-nope", kind=None)
