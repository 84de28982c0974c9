"""The plugins' Diagnostics button: the editor's part of a support zip (versions, settings, the
connection's state, the plugin's and the started backend's logs) handed to `anycost-backend
diagnose`, which adds the backend's part. Without a backend program, the editor's part alone is
zipped, so a report can be made even when the backend cannot be found."""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from .events import Loop
from .settings import Settings

TIMEOUT_S = 120.0


def plugin_info(editor: str, settings: Settings, state: str, message: str, logs: list[Path]) -> dict:
    try:
        import zmq
        pyzmq = f"{zmq.__version__} (libzmq {zmq.zmq_version()})"
    except ImportError:
        pyzmq = "not importable"
    return {"editor": editor, "python": sys.version.split()[0], "platform": platform.platform(), "pyzmq": pyzmq,
            "settings": asdict(settings), "connection": {"state": state, "message": message},
            "logs": {p.name: _tail(p) for p in logs if p.is_file()}}


def _tail(path: Path, limit: int = 1 << 20) -> str:
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - limit))
        return f.read().decode("utf-8", errors="replace")


def report_path() -> Path:
    return Path.home() / f"anycost-diagnostics-{time.strftime('%Y%m%d-%H%M%S')}.zip"


class DiagnosticsRun:
    """Runs `<executable> diagnose` without blocking the editor; `done(text, error)` when it ends."""

    def __init__(self, loop: Loop, info: dict, settings: Settings, done: Callable[[str, bool], None],
                 out: Path | None = None):
        self.out, self.done, self.settings = out or report_path(), done, settings
        fd, name = tempfile.mkstemp(prefix="anycost-plugin-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(info, f, indent=1, default=str)
        self.info_path = Path(name)
        self.info = info
        self.proc: subprocess.Popen | None = None
        self._started = time.monotonic()
        self._timer = loop.timer(self._poll, repeat=True)

    def start(self) -> None:
        exe = self.settings.executable
        path = exe if os.path.sep in exe else shutil.which(exe)
        if not path or not os.path.isfile(path):
            self._editor_part_only(f"the backend program '{exe}' was not found")
            return
        cmd = [path, "diagnose", "--out", str(self.out), "--plugin-info", str(self.info_path),
               "--address", self.settings.endpoint()]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        try:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                         stdin=subprocess.DEVNULL)
        except OSError as e:
            self._editor_part_only(str(e))
            return
        self._timer.start(200)

    def _poll(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            if time.monotonic() - self._started < TIMEOUT_S:
                return
            self.proc.kill()
            self.proc.wait()
        self._timer.stop()
        output = self.proc.stdout.read().decode("utf-8", errors="replace") if self.proc.stdout else ""
        self.info_path.unlink(missing_ok=True)
        if self.proc.returncode == 0 and self.out.is_file():
            self.done(f"Wrote {self.out}: attach it to your report (no images in it; your home folder "
                      "and login name are redacted)", False)
        else:
            last = (output.strip().splitlines() or [f"exit code {self.proc.returncode}"])[-1]
            self._editor_part_only(f"`diagnose` failed: {last}")

    def _editor_part_only(self, why: str) -> None:
        home = str(Path.home())
        text = json.dumps(self.info, indent=1, default=str).replace(home, "~")
        with zipfile.ZipFile(self.out, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("plugin.json", text)
        self.info_path.unlink(missing_ok=True)
        self.done(f"Wrote {self.out} with the editor's part only ({why})", True)
