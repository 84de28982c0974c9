"""A plain StyleGAN2 as users have it (NVIDIA's pickle; imported once into our format; pulled from a
published address): served by a real daemon, previewing only with full channels at its lower
resolutions, ranked by the consistency measured when it was first served."""
from __future__ import annotations

import hashlib
import json

import pytest
from safetensors import safe_open

from anycost.core.errors import DownloadError
from anycost.formats import registry
from anycost.formats.checkpoints import load_model

from ..conftest import fixture_path, run_cli
from ..daemon_helpers import Daemon, face_image

PICKLE = "stylegan2-ada/sg2ada_small_64.pkl"


@pytest.fixture(scope="module")
def pkl():
    return fixture_path(PICKLE)


@pytest.fixture(scope="module")
def daemon(pkl, tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("daemon"), pkl)
    d.wait_ready()
    yield d
    assert d.stop() == 0, d.log_text()


def test_served_pickle_previews_with_full_channels_at_lower_resolutions(daemon, client):
    model = client.call("models")["models"][0]
    assert model["name"] == "sg2ada_small_64" and model["resolution"] == 64
    configs = model["configs"]
    assert {c["ratio"] for c in configs} == {1.0} and {c["resolution"] for c in configs} == {64, 32, 16, 8}
    # ranked by the agreement measured at start-up (the full generator first): each quality is the
    # PSNR the daemon measured and kept
    assert configs[0]["resolution"] == 64
    assert "measured how 3 preview configurations agree with the final" in daemon.log_text()
    cached = json.loads(next((daemon.root / "state" / "calibration").glob("consistency-*.json")).read_text())
    psnr = {f["resolution"]: f["psnr"] for f in cached["consistency"]}
    assert {c["resolution"]: c["quality"] for c in configs[1:]} == psnr
    s = client.call("open", image=face_image(64, 64), steps=2, timeout=120)
    fast = client.call("edit", session=s["session"], values={"PC1": 1.0}, budget_ms=1e-6)
    assert fast["config"]["ratio"] == 1.0 and not fast["config"]["full"]
    final = client.call("render", session=s["session"], values={"PC1": 1.0}, timeout=120)
    assert final["config"]["full"] and (final["image"]["w"], final["image"]["h"]) == (64, 64)


def test_the_measured_consistency_is_kept_for_the_next_start(daemon, pkl):
    cached = list((daemon.root / "state" / "calibration").glob("consistency-*.json"))
    assert len(cached) == 1
    figures = json.loads(cached[0].read_text())["consistency"]
    assert {(f["ratio"], f["resolution"]) for f in figures} == {(1.0, 32), (1.0, 16), (1.0, 8)}
    again = Daemon(daemon.root, pkl)                    # the same state folder: read back, not measured
    try:
        again.wait_ready()
        assert "measured how" not in again.log_text()
    finally:
        assert again.stop() == 0


def test_import_writes_a_file_that_opens_without_the_pickle(pkl, tmp_path):
    out = tmp_path / "ada.safetensors"
    r = run_cli("import", str(pkl), "--out", str(out), "--licence", "test weights, no licence")
    assert r.returncode == 0, r.stderr
    assert "previews use full channels at lower resolutions" in r.stdout
    with safe_open(str(out), "pt") as f:
        meta = json.loads(f.metadata()["anycost"])
    assert meta["imported_from"]["sha256"] == hashlib.sha256(pkl.read_bytes()).hexdigest()
    assert meta["imported_from"]["layout"] == "nvidia-pickle" and meta["resolution"] == 64
    assert meta["licence"] == "test weights, no licence" and meta["sub_generators"] is False
    assert meta["generator"]["conv_clamp"] == 256
    a, b = load_model(pkl).generator.state_dict(), load_model(out).generator.state_dict()
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    # claiming to be a published model it cannot be is refused
    r = run_cli("import", str(pkl), "--out", str(out), "--as", "stylegan2-ada-ffhq")
    assert r.returncode == 2 and "draws 64 px; stylegan2-ada-ffhq is a 1024 px model" in r.stderr


# ------------------------------------------------------------------------------ published sources

def test_pull_from_the_published_address_records_the_hash_and_refuses_a_change(file_server, pkl, tmp_path,
                                                                              monkeypatch):
    root, url = file_server
    (root / "pretrained").mkdir()
    monkeypatch.setenv("ANYCOST_CACHE_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("ANYCOST_MODEL_BASE_URL", raising=False)
    src = registry.Source("stylegan2-ada-small", 64, "the fixture", "small.pkl", f"{url}/pretrained/small.pkl",
                          registry.LICENCE_NVIDIA)
    monkeypatch.setitem(registry.SOURCES, src.name, src)
    with pytest.raises(DownloadError, match=r"cannot download .*small.pkl.*place small.pkl there by hand"):
        registry.pull(src.name, progress=False)
    (root / "pretrained" / "small.pkl").write_bytes(pkl.read_bytes())
    path = registry.pull(src.name, progress=False)
    manifest = json.loads((tmp_path / "models" / "manifest.json").read_text())
    assert manifest[src.name]["sha256"] == hashlib.sha256(pkl.read_bytes()).hexdigest()
    model = registry.open_model(src.name)
    assert model.name == src.name and model.metadata["licence"] == registry.LICENCE_NVIDIA
    assert model.metadata["sub_generators"] is False and path.name == "small.pkl"
    # the host now serves another file under the same name: refused, the first one kept
    (root / "pretrained" / "small.pkl").write_bytes(pkl.read_bytes() + b"\0")
    with pytest.raises(DownloadError, match="does not match the one first seen"):
        registry.pull(src.name, force=True, progress=False)
    assert path.read_bytes() == pkl.read_bytes()
    # a mirror holding the files under their names
    mirror = root / "mirror"
    mirror.mkdir()
    (mirror / "small.pkl").write_bytes(pkl.read_bytes())
    monkeypatch.setenv("ANYCOST_MODEL_BASE_URL", f"{url}/mirror")
    assert registry.source_url(src) == f"{url}/mirror/small.pkl"
    assert registry.pull(src.name, force=True, progress=False) == path


def test_the_list_names_every_source_with_resolution_and_licence(tmp_path):
    r = run_cli("models", "list", env={"ANYCOST_CACHE_DIR": str(tmp_path / "models")})
    assert r.returncode == 0, r.stderr
    for name in ("stylegan2-ffhq-config-f", "stylegan2-ada-ffhq", "stylegan2-ffhq-1024x1024", "anycost-ffhq-config-f"):
        line = next(ln for ln in r.stdout.splitlines() if ln.split()[0] == name)
        assert "1024 px" in line and "licence" in line and "not downloaded" in line
    assert "NVIDIA Source Code License-NC" in next(ln for ln in r.stdout.splitlines() if "stylegan2-ada-ffhq" in ln)
