"""Start `anycost-backend serve` as a child of the editor that dies with it."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any


class LaunchError(Exception):
    pass


def _die_with_parent():          # Linux: the child gets SIGTERM when the editor's process ends
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG


def start_backend(executable: str, address: str, log_path: Path) -> subprocess.Popen:
    path = executable if os.path.sep in executable else shutil.which(executable)
    if not path or not os.path.isfile(path):
        raise LaunchError(f"cannot start the backend: '{executable}' was not found (install anycost-editor, "
                          "or set the backend executable in the Anycost settings)")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)           # the editor's own Python path would break the backend's
    env.pop("PYTHONHOME", None)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")
    kwargs: dict[str, Any] = {}
    if sys.platform.startswith("linux"):
        kwargs["preexec_fn"] = _die_with_parent
    elif sys.platform == "win32":
        kwargs["creationflags"] = subprocess.CREATE_NO_WINDOW | subprocess.CREATE_NEW_PROCESS_GROUP
    try:
        return subprocess.Popen([path, "serve", "--bind", address], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, **kwargs)
    except OSError as e:
        raise LaunchError(f"cannot start the backend '{path}': {e}") from None
    finally:
        log.close()


def last_lines(log_path: Path, n: int = 3) -> str:
    try:
        lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def stop_backend(proc: subprocess.Popen | None, timeout: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
