"""The user's folders: models (downloaded and placed files), state (sessions, logs, calibration) and
configuration (keys). Each has an environment variable that overrides the platform's location."""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def state_dir() -> Path:
    env = os.environ.get("ANYCOST_STATE_DIR")
    return Path(env).expanduser() if env else Path(platformdirs.user_state_dir("anycost"))


def config_dir() -> Path:
    env = os.environ.get("ANYCOST_CONFIG_DIR")
    return Path(env).expanduser() if env else Path(platformdirs.user_config_dir("anycost"))


def keys_dir() -> Path:
    return config_dir() / "keys"


def models_dir() -> Path:
    """Downloaded and hand-placed model files (ANYCOST_CACHE_DIR overrides the platform's cache folder)."""
    env = os.environ.get("ANYCOST_CACHE_DIR")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("anycost")) / "models"
