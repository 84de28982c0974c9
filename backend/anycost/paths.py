"""The user's folders for state (sessions, logs, calibration) and configuration (keys)."""
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
