"""Start `anycost-backend serve` as a child process: for the CLI and tests (`demo`, `bench --e2e`), and
for the editors, where the child must die with the editor and must not inherit its Python."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO, Any, Sequence

from anycost.protocol import messages as P


class LaunchError(Exception):
    """The backend's executable is missing or cannot be run; the message says which and why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def private_address(name: str) -> str:
    """An endpoint for a daemon of our own: a Unix socket `<name>-<pid>.sock` in this user's
    private runtime folder, or a free loopback port where there are no Unix sockets (Windows)."""
    folder = P.runtime_dir()
    if folder is None:
        return f"tcp://127.0.0.1:{free_port()}"
    return f"ipc://{folder / f'{name}-{os.getpid()}.sock'}"


def backend_executable() -> str:
    """The `anycost-backend` installed next to the running Python (the CLI's and the tests' case)."""
    return str(Path(sys.executable).with_name("anycost-backend"))


def _die_with_parent():          # Linux: the child gets SIGTERM when the editor's process ends
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG


def start_backend(address: str, args: Sequence[str] = (), executable: str | None = None,
                  threads: int | None = None, log: Path | IO[bytes] | None = None, env: dict | None = None,
                  for_editor: bool = False) -> subprocess.Popen:
    """`anycost-backend [--threads N] serve --bind ADDRESS ARGS…`. `executable`: a path or a name on
    PATH (default: backend_executable()). `log`: a file to append stdout and stderr to (default:
    discarded). `for_editor`: the child dies with this process, opens no console window and does not
    inherit the editor's PYTHONPATH/PYTHONHOME, which would break the backend's own Python."""
    executable = executable or backend_executable()
    path = executable if os.path.sep in executable else shutil.which(executable)
    if not path or not os.path.isfile(path):
        raise LaunchError(f"cannot start the backend: '{executable}' was not found. Run `anycost-backend "
                          "install-plugin` again from the installation (it records where the backend is), or enter "
                          "its path under Executable in the plugin's settings")
    env = dict(os.environ if env is None else env)
    kwargs: dict[str, Any] = {}
    if for_editor:
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONHOME", None)
        if sys.platform.startswith("linux"):
            kwargs["preexec_fn"] = _die_with_parent
        elif sys.platform == "win32":
            kwargs["creationflags"] = subprocess.CREATE_NO_WINDOW | subprocess.CREATE_NEW_PROCESS_GROUP
    pre = ["--threads", str(threads)] if threads else []
    out: Any = subprocess.DEVNULL
    if isinstance(log, Path):
        log.parent.mkdir(parents=True, exist_ok=True)
        out = open(log, "ab")
    elif log is not None:
        out = log
    try:
        return subprocess.Popen([path, *pre, "serve", "--bind", address, *args], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
                                env=env, **kwargs)
    except OSError as e:
        raise LaunchError(f"cannot start the backend '{path}': {e}") from None
    finally:
        if isinstance(log, Path):
            out.close()


def stop_backend(proc: subprocess.Popen | None, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds; nothing if it has already ended."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


def last_lines(log_path: Path, n: int = 3) -> str:
    """The last `n` non-empty lines of a backend's log, joined for a one-line message."""
    try:
        lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])
