from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("ANYCOST_FIXTURES", REPO.parent / "shared" / "fixtures"))
CLI = Path(sys.executable).with_name("anycost-backend")


def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    if not path.is_file():
        if os.environ.get("ANYCOST_REQUIRE_FIXTURES"):
            pytest.fail(f"required fixture missing: {path}")
        pytest.skip(f"fixture not available: {path}")
    return path


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


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, env=full_env, timeout=timeout)
