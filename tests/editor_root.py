"""The Debian 13 root that holds GIMP 3 and Krita 5.2 (scripts/gimp3_root.sh), for the real-editor
tests on this Debian 12 machine: finding or building it, and an X display its programs can use."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import REPO


def unavailable(message: str, required_by: str = "ANYCOST_REQUIRE_GIMP"):
    (pytest.fail if os.environ.get(required_by) else pytest.skip)(message)


def editors_root(required_by: str = "ANYCOST_REQUIRE_GIMP") -> Path:
    """The root, built by scripts/gimp3_root.sh where the tests are required to run."""
    root = Path(os.environ.get("ANYCOST_GIMP_ROOT", "/var/cache/anycost/trixie-gimp3"))
    if not (root / ".anycost-ready").is_file() or not (root / "usr/bin/krita").exists():
        if not os.environ.get(required_by):
            pytest.skip(f"no editors' root at {root} (build it with scripts/gimp3_root.sh)")
        r = subprocess.run(["bash", str(REPO / "scripts" / "gimp3_root.sh")], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"could not build the editors' root at {root}:\n{r.stderr[-2000:]}")
    if os.geteuid() != 0 or shutil.which("chroot") is None:
        unavailable("running an editor in its root needs root", required_by)
    return root


@contextlib.contextmanager
def root_display(root: Path, required_by: str = "ANYCOST_REQUIRE_GIMP", screen: str = "1366x768x24"):
    """Xvfb on this machine, its socket folder bound into the root; yields the DISPLAY value."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        unavailable("Xvfb not found (apt install xvfb)", required_by)
    number = 90 + os.getpid() % 100
    proc = subprocess.Popen([xvfb, f":{number}", "-screen", "0", screen, "-nolisten", "tcp", "-ac"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # On a machine where no X server ever ran, /tmp/.X11-unix appears only when Xvfb makes it:
    # bind it into the root once the display's socket is there, not before.
    socket = Path(f"/tmp/.X11-unix/X{number}")
    deadline = time.monotonic() + 30
    while not socket.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"Xvfb :{number} did not start: {proc.communicate()[1].decode(errors='replace')[-1000:]}")
        time.sleep(0.05)
    sockets = root / "tmp/.X11-unix"
    sockets.mkdir(exist_ok=True)
    subprocess.run(["mount", "--bind", str(socket.parent), str(sockets)], check=True)
    try:
        yield f":{number}"
    finally:
        subprocess.run(["umount", str(sockets)])
        proc.terminate()
        proc.wait(10)
