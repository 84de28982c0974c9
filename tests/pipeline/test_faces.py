"""Face detection, alignment and compositing on real and procedural photos (anycost.editing.faces)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from anycost.editing.faces.blending import composite, face_mask, mask_rect
from anycost.editing.faces.geometry import Alignment, warp_back, warp_to_crop
from anycost.editing.faces.photo import Blend, FaceError, align_photo, choose_face
from anycost.editing.faces.recipes import Recipe, model_recipe

from ..conftest import REPO, run_cli, without_module


def _require_mediapipe():
    """Skip (fail in CI) without mediapipe. Not imported here: only anycost.editing.faces imports it, keeping
    the environment clean (see detection._environment_kept)."""
    import importlib.util
    if importlib.util.find_spec("mediapipe") is None:
        if os.environ.get("ANYCOST_REQUIRE_FACES"):
            pytest.fail("mediapipe (the [faces] extra) is required here but not installed")
        pytest.skip("mediapipe (the [faces] extra) is not installed")


@pytest.fixture(scope="module")
def detector():
    _require_mediapipe()
    from anycost.editing.faces.detection import FaceDetector
    before = dict(os.environ)
    d = FaceDetector()
    assert dict(os.environ) == before        # OpenCV's Qt variables must not leak into programs we start
    yield d
    d.close()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data
    return data.astronaut()


# ------------------------------------------------------------------ geometry and blending, no detector

def test_alignment_maps_landmarks_the_way_the_ffhq_rule_says():
    # an upright face: eyes 60 apart, mouth 60 below; then turned 20 degrees and moved
    face = np.array([[-30, 0], [30, 0], [0, 30], [-25, 60], [25, 60]], dtype=np.float64)
    a = math.radians(20)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    pts = face @ rot.T + [300, 200]
    al = Alignment.from_landmarks(pts, Recipe(), 1024)
    q = al.to_crop(pts)
    # half-side max(2 * 60, 1.8 * 60) = 120 photo px -> 512 crop px; centre 0.1 of eye-to-mouth below the eyes
    s = 512 / 120
    y_eyes = 512 - 0.1 * 60 * s
    assert np.allclose(q[:2], [[512 - 30 * s, y_eyes], [512 + 30 * s, y_eyes]])
    assert np.allclose(q[3:], [[512 - 25 * s, y_eyes + 60 * s], [512 + 25 * s, y_eyes + 60 * s]])
    assert abs(al.roll_degrees - 20) < 1e-9 and abs(al.face_side - 240) < 1e-9
    assert np.allclose(al.to_photo(q), pts)
    assert np.allclose(Alignment.from_dict(json.loads(json.dumps(al.to_dict()))).matrix, al.matrix)


def test_warp_to_crop_and_back_round_trip():
    rng = np.random.default_rng(0)
    smooth = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).resize((640, 480), Image.BICUBIC)
    photo = np.asarray(smooth)
    pts = np.array([[280, 200], [360, 190], [322, 245], [290, 290], [352, 282]], dtype=np.float64)
    recipe = Recipe()
    a = Alignment.from_landmarks(pts, recipe, 256)
    crop = warp_to_crop(photo, a)
    assert crop.shape == (256, 256, 3)
    rect = mask_rect(a, recipe, (0, 0, 640, 480))
    x, y, w, h = rect
    back = warp_back(torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 127.5 - 1, a, rect)
    back8 = ((back.clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()
    inside = face_mask(a, recipe, rect) > 0.5
    err = np.abs(back8 - photo[y:y + h, x:x + w])[inside].mean()
    assert err < 3.0, err


def test_composite_keeps_every_pixel_outside_the_mask():
    rng = np.random.default_rng(1)
    original = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    edited = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    mask = np.zeros((50, 60), np.float32)
    mask[10:40, 15:45] = np.linspace(0, 1, 30, dtype=np.float32)[None]
    out = composite(original, edited, mask)
    assert np.array_equal(out[mask == 0], original[mask == 0])
    assert np.array_equal(out[mask == 1], edited[mask == 1])
    assert not np.array_equal(out, original)


def test_models_declare_their_recipe():
    from anycost.formats.registry import open_model
    meta = open_model("demo").metadata
    demo = model_recipe(meta)
    fitted = meta["alignment"]["fitted"]                  # fitted to the model's own samples' landmarks
    assert demo is not None and fitted["scale_iqr"][0] <= demo.scale <= fitted["scale_iqr"][1]
    assert model_recipe({}) is None
    with pytest.raises(Exception, match="malformed|unknown alignment"):
        model_recipe({"alignment": {"name": "ffhq", "scale": "big"}})


def test_a_profile_face_is_refused_with_its_angle(astronaut, detector):
    """No profile photo ships here: the astronaut's own 3-D landmarks are turned 60 degrees about
    the vertical axis (what a profile's mesh looks like) and given to the face choice."""
    from anycost.editing.faces.detection import DetectedFace, five_points
    face = detector.detect(astronaut)[0]
    mesh = face.mesh.copy()
    centre = mesh.mean(0)
    a = math.radians(60)
    d = mesh - centre
    mesh = centre + np.stack([d[:, 0] * math.cos(a) - d[:, 2] * math.sin(a), d[:, 1],
                              d[:, 0] * math.sin(a) + d[:, 2] * math.cos(a)], axis=1)
    turned = DetectedFace(face.box, five_points(mesh), mesh, face.score)
    assert abs(abs(turned.yaw_degrees) - 60) < 8
    with pytest.raises(FaceError, match="profile"):
        choose_face(astronaut, [turned], Recipe(), 256, (0, 0, 512, 512))


# ------------------------------------------------------------------ the astronaut (a real photograph)

def test_astronaut_landmarks_land_where_the_recipe_puts_them(astronaut, detector):
    faces = detector.detect(astronaut)
    assert len(faces) == 1 and abs(faces[0].yaw_degrees) < 15
    aligned = align_photo(astronaut, Recipe(), 256, detector)
    predicted = aligned.alignment.to_crop(faces[0].points)
    again = detector.detect(aligned.crop)
    assert len(again) == 1
    err = np.linalg.norm(again[0].points - predicted, axis=1)
    assert err.max() < 3.0, err                        # pixels of the 256 px crop
    eyes = again[0].points[:2]
    assert abs(math.degrees(math.atan2(*(eyes[1] - eyes[0])[::-1]))) < 2     # level eyes
    assert abs((eyes[0, 0] + eyes[1, 0]) / 2 - 128) < 3                      # centred


def test_turned_and_scaled_photo_gives_the_same_crop(astronaut, detector):
    from anycost_train.alignment_accuracy import turn_and_place
    moved, fwd = turn_and_place(Image.fromarray(astronaut), 1.6, -25.0, (1200, 1000), (640, 470),
                                (128, 128, 128))                 # turned 25 degrees counter-clockwise
    base = align_photo(astronaut, Recipe(), 256, detector)
    turned = align_photo(moved, Recipe(), 256, detector)
    assert abs(turned.alignment.roll_degrees - base.alignment.roll_degrees + 25) < 2    # counter-clockwise
    assert abs(turned.alignment.face_side / base.alignment.face_side - 1.6) < 0.05
    # the same photo point lands on the same crop pixel, within a few pixels
    probe = np.array([[200.0, 100.0], [250.0, 140.0], [225.0, 170.0]])
    moved_probe = probe @ fwd[:, :2].T + fwd[:, 2]
    err = np.linalg.norm(turned.alignment.to_crop(moved_probe) - base.alignment.to_crop(probe), axis=1)
    assert err.max() < 4.0, err
    diff = np.abs(turned.crop.astype(int) - base.crop.astype(int))[40:216, 40:216].mean()
    assert diff < 12, diff


def test_several_faces_largest_first_and_any_can_be_chosen(astronaut, detector):
    canvas = np.full((700, 1100, 3), 90, np.uint8)
    canvas[20:532, 20:532] = astronaut
    small = np.asarray(Image.fromarray(astronaut).resize((360, 360), Image.LANCZOS))
    canvas[300:660, 700:1060] = small
    faces = detector.detect(canvas)
    assert len(faces) == 2 and faces[0].size > faces[1].size
    assert faces[0].box[0] < 532 < faces[1].box[0]
    largest = align_photo(canvas, Recipe(), 256, detector)
    other = align_photo(canvas, Recipe(), 256, detector, face=1)
    assert largest.rect[0] < 532 and other.rect[0] > 600
    with pytest.raises(FaceError, match="2 face"):
        align_photo(canvas, Recipe(), 256, detector, face=2)
    # a region limits both where faces are looked for and what may change
    only_right = align_photo(canvas, Recipe(), 256, detector, bounds=(600, 250, 500, 450))
    assert len(only_right.faces) == 1
    x, y, w, h = only_right.rect
    assert x >= 600 and y >= 250 and x + w <= 1100 and y + h <= 700


def test_no_face_and_too_small_say_so(astronaut, detector):
    from skimage import data
    with pytest.raises(FaceError, match="no face found"):
        align_photo(data.coffee(), Recipe(), 256, detector)
    tiny = np.asarray(Image.fromarray(astronaut).resize((160, 160), Image.LANCZOS))
    with pytest.raises(FaceError, match="too small for this 1024 px model"):
        align_photo(tiny, Recipe(), 1024, detector)


def test_blend_changes_only_the_face(astronaut, detector):
    aligned = align_photo(astronaut, Recipe(), 256, detector)
    x, y, w, h = aligned.rect
    original = np.ascontiguousarray(astronaut[y:y + h, x:x + w])
    blend = Blend(aligned, original)
    render = torch.full((1, 3, 64, 64), 0.8)            # a preview-sized render of a bright face
    out = blend(render)
    outside = blend.mask == 0
    assert outside.any() and (blend.mask == 1).any()
    assert np.array_equal(out[outside], original[outside])
    assert np.abs(out[blend.mask == 1].astype(int) - 229).max() <= 1


# ------------------------------------------------------------------ procedural faces: ground truth

def test_alignment_error_on_procedural_faces_with_known_landmarks(detector):
    from anycost.formats.registry import open_model
    from anycost_train.alignment_accuracy import alignment_errors
    r = alignment_errors(model_recipe(open_model("demo").metadata), 128, detector, n=12, seed=100)
    assert r["found"] >= 9, r["misses"]
    assert r["mean_px"] < 2.5 and r["max_px"] < 6, r        # pixels of the demo model's 128 px crop


# ------------------------------------------------------------------ the command line

def test_project_align_auto_then_edit_writes_the_composited_photo(astronaut, tmp_path):
    _require_mediapipe()
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    latent = tmp_path / "a.npy"
    r = run_cli("project", str(photo), "--align", "auto", "--steps", "3", "--out", str(latent),
                "--reconstruction", str(tmp_path / "rec.png"))
    assert r.returncode == 0, r.stderr
    assert "face 0 of 1" in r.stdout and "W0000" not in r.stderr and "INFO:" not in r.stderr
    record = json.loads(latent.with_suffix(".json").read_text())
    out = tmp_path / "edited.png"
    r = run_cli("edit", str(latent), "--set", "smile=2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    edited = np.asarray(Image.open(out))
    assert edited.shape == astronaut.shape
    from anycost.editing.faces.photo import AlignedFace
    face = AlignedFace.from_record(record)
    x, y, w, h = face.rect
    keep = np.ones(astronaut.shape[:2], bool)
    keep[y:y + h, x:x + w] = face_mask(face.alignment, face.recipe, face.rect) == 0
    assert np.array_equal(edited[keep], astronaut[keep])          # bit for bit outside the mask
    assert not np.array_equal(edited, astronaut)
    rec = np.asarray(Image.open(tmp_path / "rec.png"))
    assert rec.shape == astronaut.shape and np.array_equal(rec[keep], astronaut[keep])
    Image.fromarray(astronaut[:400]).save(tmp_path / "other.png")
    r = run_cli("edit", str(latent), "--photo", str(tmp_path / "other.png"), "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "projected from a 512x512 px one" in r.stderr
    r = run_cli("edit", str(latent), "--crop-only", "--out", str(tmp_path / "crop.png"))
    assert r.returncode == 0 and Image.open(tmp_path / "crop.png").size == (64, 64)      # the model's square


def test_project_align_errors_are_one_line(astronaut, tmp_path):
    _require_mediapipe()
    from skimage import data
    Image.fromarray(data.coffee()).save(tmp_path / "coffee.png")
    r = run_cli("project", str(tmp_path / "coffee.png"), "--align", "auto", "--out", str(tmp_path / "c.npy"))
    assert r.returncode == 2 and "no face found" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("project", str(tmp_path / "coffee.png"), "--face", "1", "--out", str(tmp_path / "c.npy"))
    assert r.returncode == 2 and "--face needs --align auto" in r.stderr


def test_without_mediapipe_the_message_says_how_to_install(tmp_path):
    """A folder first on the path whose `mediapipe` cannot be imported: as on a machine without it."""
    code = ("from anycost.editing.faces.detection import FaceDetector\n"
            "try:\n    FaceDetector()\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                       env=dict(os.environ, PYTHONPATH=without_module(tmp_path, "mediapipe")))
    assert "FacesUnavailable" in r.stdout and "pip install 'anycost-editor[faces]'" in r.stdout, r.stdout + r.stderr


def test_fitted_recipe_frames_the_models_own_faces_and_is_written_into_a_model(tmp_path):
    """The crop rule fitted to where the demo model draws its faces: aligning one of its own samples by
    its detected landmarks gives back nearly the sample itself (the identity, up to the spread)."""
    import shutil

    from anycost.editing.faces.detection import FaceDetector
    from anycost.formats.checkpoints import load_model
    from anycost.formats.registry import BUILTIN_DEMO
    from anycost_train.alignment_fit import fit_recipe
    from anycost_train.attributes import AttributeMeter
    from anycost_train.directions import render, sample_w
    g = load_model(BUILTIN_DEMO).generator.eval()
    recipe, spread = fit_recipe(g, samples=60, seed=1)
    assert spread["scale_iqr"][0] <= recipe.scale <= spread["scale_iqr"][1] and spread["faces_found"] >= 15
    photos = AttributeMeter.photos(render(g, sample_w(g, 12, 5)[:, None].expand(-1, g.n_style, -1)))
    detector = FaceDetector()
    try:
        scales = [Alignment.from_landmarks(f[0].points, recipe, 256).photo_px_per_crop_px
                  for f in (detector.detect(np.ascontiguousarray(p)) for p in photos) if f]
    finally:
        detector.close()
    assert len(scales) >= 4 and 0.75 < float(np.median(scales)) < 1.33
    model = tmp_path / "m.safetensors"
    shutil.copy(BUILTIN_DEMO, model)
    train = Path(sys.executable).with_name("anycost-train")
    r = subprocess.run([str(train), "alignment", "--model", str(model), "--samples", "60"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    got = model_recipe(load_model(model).metadata)
    assert got is not None and abs(got.scale - recipe.scale) < 0.15
