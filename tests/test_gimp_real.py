"""The GIMP 3 plug-in inside real GIMP 3.0 (Debian 13's, in a chroot built by
scripts/gimp3_root.sh, since Debian 12 has only GIMP 2.10), installed by `install-plugin gimp` and
called non-interactively through the PDB against a real daemon on loopback. CI builds or reuses
the root and sets ANYCOST_REQUIRE_GIMP=1, so a missing GIMP fails there instead of skipping."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from PIL import Image

from anycost.client import Client

from .conftest import CLI, REPO
from .daemon_helpers import FACE, Daemon

W, H, REGION = 90, 76, (10, 4, 70, 66)


def gimp_root() -> Path:
    root = Path(os.environ.get("ANYCOST_GIMP_ROOT", "/var/cache/anycost/trixie-gimp3"))
    if not (root / ".anycost-ready").is_file():
        missing = f"no GIMP 3 root at {root} (build it with scripts/gimp3_root.sh)"
        if os.environ.get("ANYCOST_REQUIRE_GIMP"):
            r = subprocess.run(["bash", str(REPO / "scripts" / "gimp3_root.sh")], capture_output=True, text=True)
            if r.returncode != 0:
                pytest.fail(missing + ":\n" + r.stderr[-2000:])
        else:
            pytest.skip(missing)
    if os.geteuid() != 0 or shutil.which("chroot") is None:
        (pytest.fail if os.environ.get("ANYCOST_REQUIRE_GIMP") else pytest.skip)("running GIMP in its root needs root")
    return root


@pytest.mark.slow
def test_plugin_in_real_gimp3(tiny_model_file, tmp_path):
    root = gimp_root()
    inside = Path("/tmp") / f"anycost-test-{uuid.uuid4().hex[:8]}"      # the same folder seen from the chroot
    work = root / inside.relative_to("/")
    home = work / "home"
    try:
        r = subprocess.run([str(CLI), "install-plugin", "gimp", "--plug-ins-dir",
                            str(home / ".config/GIMP/3.0/plug-ins")], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        script = home / ".config/GIMP/3.0/plug-ins/anycost-edit/anycost-edit.py"
        assert os.access(script, os.X_OK)
        Image.open(FACE).convert("RGBA").resize((W, H)).save(work / "face.png")
        (work / "face.rgba").write_bytes(Image.open(work / "face.png").tobytes())
        daemon = Daemon(tmp_path, tiny_model_file)
        try:
            daemon.wait_ready()
            shutil.copy(REPO / "tests" / "gimp_batch.py", work / "batch.py")
            (work / "params.json").write_text(json.dumps({
                "w": W, "h": H, "region": REGION, "face": str(inside / "face.rgba"), "address": daemon.address,
                "edits": "PC1=3", "out": str(inside / "result.json")}))
            run = subprocess.run(["chroot", str(root), "env", f"HOME={inside / 'home'}",
                                  f"ANYCOST_TEST_PARAMS={inside / 'params.json'}", "gimp-console-3.0", "-i",
                                  "--batch-interpreter=python-fu-eval", "-b",
                                  f"exec(open('{inside / 'batch.py'}').read())", "--quit"],
                                 capture_output=True, text=True, timeout=300)
            (tmp_path / "gimp.log").write_text(run.stdout + run.stderr)
            out = work / "result.json"
            assert out.is_file(), f"GIMP wrote no result (rc {run.returncode}):\n{run.stderr[-3000:]}"
            res = json.loads(out.read_text())
            with Client(daemon.address) as c:
                assert c.call("stats")["sessions"] == 0                    # both calls closed their session
        finally:
            daemon.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert "error" not in res, res["error"]
    assert res["registered"] and res["menu_paths"] == ["<Image>/Filters/Generative"]
    assert res["bad_status"] == "execution-error" and "Anycost: this model has no direction nope" in res["bad_message"]
    assert res["layers_after_bad"] == ["Face"]                               # a failed call leaves no trace
    assert res["status"] == "success", res["message"]
    assert res["layers"] == ["Anycost edit (PC1 +3.00)", "Face"]
    assert res["new_bounds"] == list(REGION)                                 # pasted into the selection
    assert res["alpha_centre"] == 255 and res["alpha_corner"] < 128          # feathered edge
    assert res["differs_from_source"] and res["source_unchanged"]
