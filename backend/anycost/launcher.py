"""Start a daemon as a child process and wait until it serves (used by `demo`, `bench --e2e`, tests)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from . import protocol as P
from .client import Client


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
    return str(Path(sys.executable).with_name("anycost-backend"))


def start_daemon(address: str, args: Sequence[str] = (), env: dict | None = None, log_file=None,
                 threads: int | None = None) -> subprocess.Popen:
    pre = ["--threads", str(threads)] if threads else []
    return subprocess.Popen([backend_executable(), *pre, "serve", "--bind", address, *args],
                            stdout=log_file or subprocess.DEVNULL, stderr=log_file or subprocess.DEVNULL, env=env)


def wait_ready(address: str, proc: subprocess.Popen | None = None, timeout: float = 120.0) -> dict:
    """The hello data once the daemon at `address` is ready (Client.wait_ready: its errors)."""
    with Client(address) as c:
        return c.wait_ready(timeout, proc)
