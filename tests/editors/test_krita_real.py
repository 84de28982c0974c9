"""The Krita plugin inside real Krita (Debian's `krita`, GUI under Xvfb, an isolated profile),
against a real daemon: installed by `anycost-backend install-plugin krita`, driven like a user by
tests/krita_driver (Project, drag a slider, Apply, Undo). CI installs Krita and Xvfb
(.ci/run) and sets ANYCOST_REQUIRE_KRITA=1, so a missing Krita fails there instead of skipping."""
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

from anycost.install.plugins import enable_in_kritarc, set_in_kritarc
from anycost.protocol.client import Client

from ..conftest import CLI, REPO
from ..daemon_helpers import FACE, Daemon
from ..editor_root import editors_root, root_display

DRIVER = REPO / "tests" / "krita_driver"
W, H, REGION = 96, 80, (12, 6, 72, 68)
PHOTO_REGION = (110, 0, 280, 300)          # the astronaut's head and some background around it


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} not found (apt install krita xvfb xauth)"
        if os.environ.get("ANYCOST_REQUIRE_KRITA"):
            pytest.fail(message)
        pytest.skip(message)
    return path


class Profile:
    """An isolated Krita profile with the plugin installed by `install-plugin krita` and enabled,
    and the test driver beside it: for this machine's Krita (Debian 12: 5.1.5), or for Krita 5.2.9
    in the editors' Debian 13 root (`root`), where paths are seen from inside the root."""

    def __init__(self, tmp_path: Path, root: Path | None = None):
        self.root = root
        if root is None:
            self.base = self.inside_base = tmp_path
        else:
            self.inside_base = Path("/tmp") / f"anycost-krita-{uuid.uuid4().hex[:8]}"
            self.base = root / self.inside_base.relative_to("/")
            self.base.mkdir(parents=True)
        home = self.base / "home"
        (self.base / "run").mkdir(mode=0o700)
        pykrita = home / ".local/share/krita/pykrita"
        self.kritarc = home / ".config/kritarc"
        r = subprocess.run([str(CLI), "install-plugin", "krita", "--pykrita-dir", str(pykrita), "--kritarc",
                            str(self.kritarc)], capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, HOME=str(home)))
        assert r.returncode == 0, r.stderr
        assert (pykrita / "anycost_krita.desktop").is_file() \
            and (pykrita / "anycost_krita/vendor/anycost/protocol/messages.py").is_file()
        shutil.copytree(DRIVER / "anycost_test_driver", pykrita / "anycost_test_driver")
        shutil.copy(DRIVER / "anycost_test_driver.desktop", pykrita)
        enable_in_kritarc(self.kritarc, "anycost_test_driver")
        self.env = {"HOME": self.inside(home), "XDG_DATA_HOME": self.inside(home / ".local/share"),
                    "XDG_CONFIG_HOME": self.inside(home / ".config"), "XDG_CACHE_HOME": self.inside(home / ".cache"),
                    "XDG_RUNTIME_DIR": self.inside(self.base / "run")}

    def inside(self, path: Path) -> str:
        """`path` (under this profile's folder here) as Krita sees it."""
        return str(self.inside_base / path.relative_to(self.base))

    def launch(self, extra: dict, log: Path, timeout: float = 300, screen: str = "1366x768x24"):
        """Run Krita (GUI, a 1366×768 virtual screen) until the driver quits it; its exit code."""
        env = {**self.env, **extra}
        with log.open("w") as f:
            try:
                if self.root is None:
                    full = dict(os.environ, **env)
                    full.pop("QT_QPA_PLATFORM", None)
                    return subprocess.run([_need("xvfb-run"), "-a", "-s", f"-screen 0 {screen}", _need("krita"),
                                           "--nosplash"], env=full, stdout=f, stderr=subprocess.STDOUT,
                                          timeout=timeout).returncode
                proc = self.root / "proc"
                mounted = not os.path.ismount(proc)
                if mounted:
                    subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
                try:
                    with root_display(self.root, "ANYCOST_REQUIRE_KRITA", screen) as display:
                        pairs = [f"{k}={v}" for k, v in {**env, "DISPLAY": display, "PATH": "/usr/bin:/bin",
                                                         "LANG": "C.UTF-8"}.items()]
                        return subprocess.run(["chroot", str(self.root), "env", "-i", *pairs, "krita", "--nosplash"],
                                              stdout=f, stderr=subprocess.STDOUT, timeout=timeout).returncode
                finally:
                    if mounted:
                        subprocess.run(["umount", str(proc)])
            except subprocess.TimeoutExpired:
                return "timeout"

    def remove(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(params=["krita-5.1"])
def profile(request, tmp_path):
    """This machine's Krita, or (`krita-5.2`) Debian 13's in the editors' root."""
    root = editors_root("ANYCOST_REQUIRE_KRITA") if request.param == "krita-5.2" else None
    if root is None:
        _need("krita")
        _need("xvfb-run")
    p = Profile(tmp_path, root)
    yield p
    p.remove()


def astronaut_bgra() -> tuple[bytes, np.ndarray]:
    from skimage import data
    rgb = data.astronaut()
    bgra = np.concatenate([rgb[..., ::-1], np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return np.ascontiguousarray(bgra).tobytes(), rgb


@pytest.mark.slow
@pytest.mark.parametrize("model, aligned, profile", [
    ("demo", False, "krita-5.1"), ("creps-demo", False, "krita-5.1"), ("demo", True, "krita-5.1"),
    ("demo", False, "krita-5.2")], indirect=["profile"])
def test_docker_in_real_krita(profile, tmp_path, model, aligned):
    """The whole flow with each built-in model: the anycost demo (final resized to the selection)
    and the CREPS demo (final drawn at the selection's size); and on a photograph with the face
    found and aligned: the edit lands around the face only, the rest of the photo untouched. The
    first flow also in Krita 5.2.9 (Python 3.13, Debian 13's), what most users have now."""
    if aligned:
        from ..pipeline.test_faces import _require_mediapipe
        _require_mediapipe()
    w, h, region = (512, 512, PHOTO_REGION) if aligned else (W, H, REGION)
    daemon = Daemon(tmp_path, None)                      # the built-in models, as a user gets them
    try:
        daemon.wait_ready()
        # the docker's settings, as the user would have saved them (kritarc [anycost])
        set_in_kritarc(profile.kritarc, "anycost", {"address": daemon.address, "autostart": "false", "feather": "6",
                                            "steps": "5", "align_faces": "true" if aligned else "false"})
        if aligned:
            bgra, photo = astronaut_bgra()
        else:
            face = Image.open(FACE).convert("RGBA").resize((W, H))
            r, g, b, a = face.split()
            bgra = Image.merge("RGBA", (b, g, r, a)).tobytes()
        (profile.base / "face.bgra").write_bytes(bgra)
        out = profile.base / "result.json"
        extra = dict(ANYCOST_TEST_OUT=profile.inside(out), ANYCOST_TEST_FACE=profile.inside(profile.base / "face.bgra"),
                     ANYCOST_TEST_W=str(w), ANYCOST_TEST_H=str(h), ANYCOST_TEST_REGION=",".join(map(str, region)),
                     ANYCOST_TEST_MODEL=model)
        if os.environ.get("ANYCOST_SCREENSHOTS") and profile.root is None:
            extra["ANYCOST_SCREENSHOTS"] = os.environ["ANYCOST_SCREENSHOTS"]
        log = tmp_path / "krita.log"
        rc = profile.launch(extra, log)
        assert out.is_file(), f"Krita wrote no result (rc {rc}):\n{log.read_text(errors='replace')[-3000:]}"
        res = json.loads(out.read_text())
        assert "error" not in res, res["error"]
        if res.get("screenshots_only"):                # scripts/editor_screenshots.sh: the pictures only
            return
        assert "document was closed" in res["after_close"] and not any("Lost" in m for m in res["connection_messages"])
        with Client(daemon.address) as c:                                      # no session leaked
            stats = c.call("stats")
            assert stats["sessions"] == 0, json.dumps(stats["requests"])
    finally:
        daemon.stop()
    assert res["done"] and res["docker_found"] and res["status"].startswith("Connected")
    if profile.root is not None:                                   # Debian 13's Krita and its Python
        assert res["krita"][0].startswith("5.2.") and res["krita"][1] == "3.13", res["krita"]
    # a 1366×768 laptop screen: the docker asks for little height, so Krita's window is not pushed past it
    assert res["docker_min_height"] < 300 and res["window_height"] <= 768, (res["docker_min_height"],
                                                                            res["window_height"])
    assert res["feather_setting"] == 6 and res["models"] == ["demo", "creps-demo"]   # settings read from kritarc
    assert res["model"] == model
    assert res["preview_after_project"] and res["slider_names"]
    assert res["preview_changed"] and res["source_unchanged_while_editing"]
    if aligned:        # the face's surroundings inside the selection; outside the face mask, the photo as it was
        x, y, rw, rh = res["region"]
        assert res["applied_bounds"] == res["region"] and rw * rh < region[2] * region[3] // 2
        assert region[0] <= x and region[1] <= y and x + rw <= region[0] + region[2] and y + rh <= region[1] + region[3]
        assert_outside_mask_untouched(photo, res, profile.base)
    else:
        assert res["applied_bounds"] == list(region)                           # pasted into the selection
    assert res["applied_alpha_centre"] == 255 and res["applied_alpha_corner"] < 128   # feathered edge
    assert res["applied_differs_from_source"] and res["source_unchanged_after_apply"]
    assert "Anycost preview" not in res["layers_after_apply"]
    assert "Face" in res["layers_before"] and not any("Anycost" in n for n in res["layers_before"])
    assert res["layers_after_undo"] == res["layers_before"] and res["source_unchanged_after_undo"]   # one undo step
    # the session outlives Apply; a second Apply adds a second layer; the next preview sits above both
    top = [n for n in res["layers_with_an_earlier_edit"] if n != "Selection Mask"]   # layers, bottom to top
    assert res["sliders_after_apply"] and top[-1] == "Anycost preview" and top[-3] == "Face"
    assert top[-2].startswith("Anycost edit") and sum(n.startswith("Anycost") for n in top) == 2   # 1st undone
    # before/after: the preview taken away (also when Original lands while Krita is still adding the
    # layer, as it often does here: test_krita_host.py pins that case), then back
    assert "Anycost preview" not in res["layers_while_original"] and res["preview_back_after_compare"]
    assert res["active_after_apply"] == "Face"
    assert "Anycost preview" not in res["layers_after_discard"]
    # Cancel while the projection shows its progress: no locked preview layer left, nothing to discard
    assert res["progress_preview_seen"] and "Projecting" in res["progress_text"]
    assert "Anycost preview" not in res["layers_after_cancel"] and not res["discard_after_cancel"]
    assert res["message_after_cancel"] == "Projection cancelled"
    ms = sorted(res["preview_ms"])
    print(f"\nslider -> preview on the Krita canvas, {model} model, {len(ms)} moves: median {ms[len(ms) // 2]:.0f} ms, "
          f"min {ms[0]:.0f}, max {ms[-1]:.0f}; configs {res['preview_configs']}")


@pytest.mark.slow
def test_first_start_after_install_connects_with_nothing_typed(profile, tmp_path):
    """Krita started from the desktop has no virtualenv on its PATH: the docker starts the backend
    that install-plugin recorded, on the default endpoint, with no setting typed."""
    text = profile.kritarc.read_text()
    assert "[anycost]" in text and "address=" not in text                  # only what install wrote
    out = profile.base / "result.json"
    extra = {"PATH": "/usr/bin:/bin",                                       # not the virtualenv's bin/
             "ANYCOST_STATE_DIR": str(tmp_path / "state"), "ANYCOST_CACHE_DIR": str(tmp_path / "cache"),
             "ANYCOST_ADDRESS": "", "ANYCOST_TEST_OUT": str(out), "ANYCOST_TEST_SCENARIO": "first-run",
             "ANYCOST_TEST_STEP_TIMEOUT": "240"}
    log = tmp_path / "krita.log"
    rc = profile.launch(extra, log, timeout=400)
    assert out.is_file(), f"Krita wrote no result (rc {rc}):\n{log.read_text(errors='replace')[-3000:]}"
    res = json.loads(out.read_text())
    assert "error" not in res, res["error"] + "\n" + "\n".join(res.get("connection_messages", []))
    assert res["done"] and res["executable_setting"] == str(CLI)
    assert res["status"].startswith("Connected") and "(started by Krita)" in res["status"]
    assert "demo" in res["models"]


def photo_mask_outside(photo: np.ndarray, region: list) -> np.ndarray:
    """Where the face mask of the demo model's alignment of `photo` (found again, in PHOTO_REGION)
    is 0, over `region`, which must be the rectangle the backend returned."""
    from anycost.editing.faces.blending import face_mask
    from anycost.editing.faces.detection import FaceDetector
    from anycost.editing.faces.photo import align_photo
    from anycost.editing.faces.recipes import model_recipe
    from anycost.formats.registry import open_model
    detector = FaceDetector()
    try:
        demo = open_model("demo")
        aligned = align_photo(photo, model_recipe(demo.metadata), demo.generator.cfg.resolution, detector,
                              PHOTO_REGION)
    finally:
        detector.close()
    assert list(aligned.rect) == list(region)
    return face_mask(aligned.alignment, aligned.recipe, aligned.rect) == 0


def assert_outside_mask_untouched(photo: np.ndarray, res: dict, folder: Path) -> None:
    """The applied layer's colours equal the photo's wherever the face mask is 0 (so the layer,
    whatever its alpha, changes nothing there)."""
    x, y, w, h = res["region"]
    px = np.frombuffer((folder / "result.json.applied").read_bytes(), np.uint8).reshape(h, w, 4)
    rgb = px[..., 2::-1]
    outside = photo_mask_outside(photo, res["region"])
    assert outside.any() and np.array_equal(rgb[outside], photo[y:y + h, x:x + w][outside])
    assert not np.array_equal(rgb[~outside], photo[y:y + h, x:x + w][~outside])
