"""The GIMP 3 plug-in inside real GIMP 3.0 (Debian 13's, in a chroot built by
scripts/gimp3_root.sh, since Debian 12 has only GIMP 2.10), installed by `install-plugin gimp`,
against a real daemon on loopback: called non-interactively through the PDB, and its interactive
dialog driven like a user under Xvfb. CI builds or reuses the root and sets ANYCOST_REQUIRE_GIMP=1,
so a missing GIMP fails there instead of skipping."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anycost.protocol.client import Client

from ..conftest import CLI, REPO
from ..daemon_helpers import FACE, Daemon
from ..editor_root import editors_root, root_display

W, H, REGION = 90, 76, (10, 4, 70, 66)


def gimp_root() -> Path:
    return editors_root("ANYCOST_REQUIRE_GIMP")


class Gimp3:
    """An isolated GIMP profile with the plug-in installed, inside the root; runs batch scripts."""

    def __init__(self, root: Path, tmp_path: Path):
        self.root = root
        self.inside = Path("/tmp") / f"anycost-test-{uuid.uuid4().hex[:8]}"     # as seen from the chroot
        self.work = root / self.inside.relative_to("/")
        self.plug_ins = self.work / "home/.config/GIMP/3.0/plug-ins"
        self.tmp_path = tmp_path
        r = subprocess.run([str(CLI), "install-plugin", "gimp", "--plug-ins-dir", str(self.plug_ins)],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert os.access(self.plug_ins / "anycost-edit/anycost-edit.py", os.X_OK)
        (self.work / "face.rgba").write_bytes(Image.open(FACE).convert("RGBA").resize((W, H)).tobytes())

    def run(self, script: str, params: dict, display: str | None = None) -> dict:
        shutil.copy(REPO / "tests" / script, self.work / "batch.py")
        shutil.copy(REPO / "tests" / "gimp_test_image.py", self.work)
        params = {"w": W, "h": H, "region": REGION, "face": str(self.inside / "face.rgba"),
                  "plugin_dir": str(self.inside / "home/.config/GIMP/3.0/plug-ins/anycost-edit"),
                  "out": str(self.inside / "result.json"), **params}
        (self.work / "params.json").write_text(json.dumps(params))
        env = [f"HOME={self.inside / 'home'}", f"ANYCOST_TEST_PARAMS={self.inside / 'params.json'}"]
        if display:
            env.append(f"DISPLAY={display}")
        run = subprocess.run(["chroot", str(self.root), "env", *env, "gimp-console-3.0", "-i",
                              "--batch-interpreter=python-fu-eval", "-b",
                              f"exec(open('{self.inside / 'batch.py'}').read())", "--quit"],
                             capture_output=True, text=True, timeout=300)
        (self.tmp_path / f"{script}.log").write_text(run.stdout + run.stderr)
        out = self.work / "result.json"
        assert out.is_file(), f"GIMP wrote no result (rc {run.returncode}):\n{run.stderr[-3000:]}"
        res = json.loads(out.read_text())
        out.unlink()
        applied = self.work / "result.json.applied"
        if applied.is_file():
            res["applied_rgba"] = applied.read_bytes()
            applied.unlink()
        assert "error" not in res, res["error"]
        return res

    def remove(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


@pytest.fixture
def gimp(tmp_path):
    g = Gimp3(gimp_root(), tmp_path)
    yield g
    g.remove()


@pytest.fixture
def daemon(tiny_model_file, tmp_path):
    yield from _serving(tiny_model_file, tmp_path)


@pytest.fixture
def creps_daemon(tiny_creps_file, tmp_path):
    yield from _serving(tiny_creps_file, tmp_path)


def _serving(model, tmp_path):
    d = Daemon(tmp_path, model)
    d.wait_ready()
    yield d
    with Client(d.address) as c:
        assert c.call("stats")["sessions"] == 0             # every call closed its session
    d.stop()


@pytest.fixture
def display(gimp):
    """An X server for GIMP's dialogs, reachable from inside the root."""
    with root_display(gimp.root) as name:
        yield name


@pytest.mark.slow
def test_noninteractive_call_through_the_pdb(gimp, daemon):
    res = gimp.run("gimp_batch.py", {"address": daemon.address, "edits": "PC1=3"})
    assert res["registered"] and res["menu_paths"] == ["<Image>/Filters/Generative"]
    assert res["bad_status"] == "execution-error" and "Anycost: this model has no direction nope" in res["bad_message"]
    assert res["layers_after_bad"] == ["Face"]                               # a failed call leaves no trace
    assert res["status"] == "success", res["message"]
    assert res["layers"] == ["Anycost edit (PC1 +3.00)", "Face"]
    assert res["new_bounds"] == list(REGION)                                 # pasted into the selection
    assert res["alpha_centre"] == 255 and res["alpha_corner"] < 128          # feathered edge
    assert res["differs_from_source"] and res["source_unchanged"]


@pytest.mark.slow
def test_noninteractive_call_with_a_creps_model(gimp, creps_daemon):
    """A CREPS model (the daemon's only one) draws the final at the selection's size: the same layer."""
    res = gimp.run("gimp_batch.py", {"address": creps_daemon.address, "edits": "PC1=3"})
    assert res["status"] == "success", res["message"]
    assert res["layers"] == ["Anycost edit (PC1 +3.00)", "Face"] and res["new_bounds"] == list(REGION)
    assert res["alpha_centre"] == 255 and res["differs_from_source"] and res["source_unchanged"]


@pytest.mark.slow
def test_noninteractive_call_aligns_the_face_of_a_photo(gimp, tmp_path):
    """The built-in demo model declares a face alignment: on a photograph the plug-in's new layer
    covers the face's surroundings only, and wherever the face mask is 0 its pixels are the photo's."""
    from ..pipeline.test_faces import _require_mediapipe
    from .test_krita_real import PHOTO_REGION, photo_mask_outside
    _require_mediapipe()
    from skimage import data
    photo = data.astronaut()
    rgba = np.concatenate([photo, np.full(photo.shape[:2] + (1,), 255, np.uint8)], axis=2)
    (gimp.work / "photo.rgba").write_bytes(np.ascontiguousarray(rgba).tobytes())
    for d in _serving(None, tmp_path):
        res = gimp.run("gimp_batch.py", {"address": d.address, "edits": "smile=2", "w": 512, "h": 512,
                                         "region": PHOTO_REGION, "face": str(gimp.inside / "photo.rgba")})
    assert res["status"] == "success", res["message"]
    assert res["layers"] == ["Anycost edit (smile +2.00)", "Face"] and res["source_unchanged"]
    x, y, w, h = res["new_bounds"]
    rx, ry, rw, rh = PHOTO_REGION
    assert rx <= x and ry <= y and x + w <= rx + rw and y + h <= ry + rh and w * h < rw * rh // 2
    rgb = np.frombuffer(res["applied_rgba"], np.uint8).reshape(h, w, 4)[..., :3]
    outside = photo_mask_outside(photo, [x, y, w, h])
    assert outside.any() and np.array_equal(rgb[outside], photo[y:y + h, x:x + w][outside])
    assert not np.array_equal(rgb[~outside], photo[y:y + h, x:x + w][~outside])


@pytest.mark.slow
def test_interactive_dialog(gimp, daemon, display):
    shots = os.environ.get("ANYCOST_SCREENSHOTS")
    res = gimp.run("gimp_dialog_batch.py", {"address": daemon.address, "screenshots": bool(shots)}, display=display)
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        shutil.copy(gimp.work / "gimp-dialog.png", Path(shots) / "gimp-dialog.png")
    assert res["done"] and res["status"].startswith("Connected")
    assert res["layers_editing"] == ["Anycost preview", "Face"]            # the live preview layer
    assert res["align_checked"] and not res["face_row_visible"]
    assert res["preview_changed"] and res["edits_sent"] < 10                # latest wins: drags coalesce
    assert res["value_label"] == "+3.00"                # the value beside the scale, as the docker prints it
    # "Add layer" keeps the sliders; the next preview goes above that layer, not under it
    assert res["layers_after_add"][1:] == ["Face"] and res["layers_after_add"][0].startswith("Anycost edit (")
    assert res["layers_preview_over_edit"][0] == "Anycost preview"
    assert res["layers_preview_over_edit"][1].startswith("Anycost edit (")
    assert "Anycost preview" not in res["layers_while_original"] and res["preview_back_after_compare"]
    assert res["applied"] and res["layers_after_ok"][2:] == ["Face"] and "Anycost preview" not in res["layers_after_ok"]
    assert all(n.startswith("Anycost edit (") for n in res["layers_after_ok"][:2])   # OK: the second result
    # 16 sliders on a 1366×768 screen: the list scrolls, the dialog stays short; labels for people
    assert res["dialog_height_16_sliders"] <= 700 and res["slider_labels"] == ["Variation 1", "Variation 2"]
    assert res["recorded_executable"] == str(CLI)          # install-plugin's settings.json, in the dialog
    # Stop ends the projection alone: no preview layer left, the dialog goes on
    assert "Projecting" in res["progress_text"] and res["stop_visible"]
    assert "Anycost preview" not in res["layers_after_stop"] and res["message_after_stop"] == "Projection cancelled"
    assert res["new_bounds"] == list(REGION) and res["alpha_centre"] == 255 and res["alpha_corner"] < 128
    assert res["cancel_applied"] is False and res["layers_after_cancel"] == res["layers_after_ok"]   # no trace
    assert res["source_unchanged"] and res["undo_enabled_after"]
