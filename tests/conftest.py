from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from functools import partial
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("ANYCOST_FIXTURES", REPO.parent / "shared" / "fixtures"))
CLI = Path(sys.executable).with_name("anycost-backend")
# the official generator code (MIT), kept beside the fixtures for same-run comparisons
OFFICIAL_CODE = Path(os.environ.get("ANYCOST_OFFICIAL_CODE", REPO.parent / "shared" / "reference" / "anycost-gan"))


def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    if not path.is_file():
        if os.environ.get("ANYCOST_REQUIRE_FIXTURES"):
            pytest.fail(f"required fixture missing: {path}")
        pytest.skip(f"fixture not available: {path}")
    return path


def official_code() -> Path:
    """The official code's folder; skipped (failed under ANYCOST_REQUIRE_FIXTURES) where it is not."""
    if not (OFFICIAL_CODE / "models" / "anycost_gan.py").is_file():
        if os.environ.get("ANYCOST_REQUIRE_FIXTURES"):
            pytest.fail(f"the official code is missing: {OFFICIAL_CODE}")
        pytest.skip(f"the official code is not available: {OFFICIAL_CODE}")
    return OFFICIAL_CODE


@pytest.fixture(scope="session")
def official_fixture() -> dict:
    return torch.load(fixture_path("anycost_official_g_small.pt"), weights_only=True)


@pytest.fixture(scope="session")
def official_file(official_fixture, tmp_path_factory) -> Path:
    """The fixture's weights written as an official release file: {'g_ema': state_dict}."""
    path = tmp_path_factory.mktemp("official") / "generator_small-config.pt"
    torch.save({"g_ema": official_fixture["state_dict"]}, path)
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Never read or write the user's real model folder."""
    monkeypatch.setenv("ANYCOST_CACHE_DIR", str(tmp_path / "model-cache"))


@pytest.fixture(autouse=True)
def runtime_dir(monkeypatch):
    """A runtime folder of the test's own (short: a Unix socket path holds about 100 bytes), so
    default endpoints never meet a real daemon or anything an earlier run left behind."""
    folder = Path(tempfile.mkdtemp(prefix="acrt-", dir="/tmp" if os.name == "posix" else None))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    monkeypatch.delenv("ANYCOST_ADDRESS", raising=False)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def without_module(tmp_path: Path, name: str) -> str:
    """A folder to put first on PYTHONPATH in which importing `name` fails, as on a machine without it."""
    blocker = tmp_path / "block" / name
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(f"raise ImportError(\"No module named '{name}'\")\n")
    return str(tmp_path / "block")


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, env=full_env, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A small generator in our format (64 px), quick enough to project in a test."""
    from anycost.formats.checkpoints import save_model
    from anycost.models import Generator, GeneratorConfig
    torch.manual_seed(0)
    g = Generator(GeneratorConfig.from_multiplier(64, 0.0625, 32, style_dim=64, n_mlp=2))
    with torch.no_grad():  # noise and biases away from their zero init, so every path is exercised
        for name, p in g.named_parameters():
            if name.endswith("noise.weight") or name.endswith("activate.bias"):
                p.add_(0.1 * torch.randn_like(p))
    g.update_w_avg(1000)
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_model(path, g, {"name": "tiny"})
    return path


def _tiny_creps_config():
    from anycost.models.creps import CrepsConfig
    return CrepsConfig(64, style_dim=64, n_mlp=2, channel_base=1024, channel_max=32, rank=4, pixel_dim=8,
                       decoder_hidden=(8, 8, 8), head_widths=(8, 8))


TINY_CREPS = _tiny_creps_config()


@pytest.fixture(scope="session")
def tiny_creps_file(tiny_model_file, tmp_path_factory) -> Path:
    """Two distillation steps toward the tiny model: a CREPS model file in its W space."""
    from anycost_train.config import load_creps_config
    from anycost_train.creps_training import CrepsTrainer
    out = tmp_path_factory.mktemp("creps-run")
    over = {"arch": "custom", "generator": TINY_CREPS.to_dict(), "teacher": str(tiny_model_file), "adv_weight": 0.0,
            "pl_weight": 0.0, "iters": 2, "resolutions": (16, 8), "checkpoint_every": 2, "sample_every": 2}
    CrepsTrainer(load_creps_config("creps-tiny", None, over), out, progress=False).run()
    return out / "latest.safetensors"


@pytest.fixture(scope="module")
def tiny_daemon(tiny_model_file, tmp_path_factory):
    """A real daemon serving the tiny model, shared by a test module."""
    from .daemon_helpers import Daemon
    d = Daemon(tmp_path_factory.mktemp("daemon"), tiny_model_file)
    d.wait_ready()
    yield d
    assert d.stop() == 0, d.log_text()


@pytest.fixture
def client(daemon):
    """A client of the module's `daemon` fixture."""
    from anycost.protocol.client import Client
    with Client(daemon.address) as c:
        yield c


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture
def file_server(tmp_path):
    """A real HTTP server on loopback serving the folder it returns (stands in for a model host or a
    mirror): (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
