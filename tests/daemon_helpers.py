"""Start real `anycost-backend serve` processes for tests, each with its own state folders."""
from __future__ import annotations

import os
import signal
from pathlib import Path

from PIL import Image

from anycost.core.defaults import DEMO_FACE
from anycost.protocol import messages as P
from anycost.protocol.client import Client
from anycost.protocol.spawn import free_port, start_backend

FACE = DEMO_FACE


def face_image(w: int = 96, h: int = 80, mode: str = "RGB8") -> dict:
    img = Image.open(FACE).convert("RGBA" if mode == "RGBA8" else "RGB").resize((w, h))
    return P.Image(w, h, mode, img.tobytes()).to_dict()


class Daemon:
    def __init__(self, root: Path, model: Path | str | None, *extra: str, port: int | None = None,
                 address: str | None = None):
        """model None: the daemon's default (the built-in demo model). On loopback TCP (which the
        GIMP root reaches too) unless `address` is given."""
        self.root = root
        self.address = address or f"tcp://127.0.0.1:{port or free_port()}"
        self.env = dict(os.environ, ANYCOST_STATE_DIR=str(root / "state"), ANYCOST_CACHE_DIR=str(root / "cache"),
                        ANYCOST_CONFIG_DIR=str(root / "config"))
        args = [*(["--model", str(model)] if model is not None else []), "--steps", "5", "--refine-delay", "0.2",
                *extra]
        self.log_path = root / f"daemon-{abs(hash(self.address))}.log"
        self.log = open(self.log_path, "ab")
        self.proc = start_backend(self.address, args, env=self.env, log=self.log, threads=1)

    def wait_ready(self, timeout: float = 120) -> P.Hello:
        with Client(self.address) as c:
            return c.wait_ready(timeout, self.proc)

    def stop(self, sig=signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.log.close()
        return code

    def log_text(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")
