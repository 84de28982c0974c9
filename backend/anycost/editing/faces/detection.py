"""Faces and their landmarks, by mediapipe 0.10.14 (an optional extra: `pip install .[faces]`).

Why mediapipe: its 0.10.14 wheel carries its face detector and 468-point face mesh inside the
package, so nothing is downloaded at run time (dlib, face-alignment and insightface download their
models; OpenCV ships only Haar cascades, no landmarks; mediapipe releases after 0.10.14 need
separately downloaded `.task` files). docs/faces.md has the measured accuracy.

Two stages, as mediapipe's own face mesh does, but with the full-range detector: faces are found
in the whole photo (small faces in a large group photo too), then each face's square neighbourhood
is given to the mesh at a size it was trained for.
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from anycost.core.defaults import DEMO_FACE
from anycost.core.errors import AnycostError

# Face-mesh indices: the eye contours (the image-left eye is the subject's right), nose tip and the
# mouth's outer corners; the eye centre is the contour's mean, as FFHQ's is the mean of dlib's six.
LEFT_EYE_CONTOUR = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
RIGHT_EYE_CONTOUR = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
NOSE_TIP, MOUTH_LEFT, MOUTH_RIGHT = 1, 61, 291
LEFT_EYE_OUTER, RIGHT_EYE_OUTER = 33, 263
MESH_INPUT = 384          # side of the square a face's neighbourhood is resized to for the mesh
NEIGHBOURHOOD = 2.2       # that square's side, in detector boxes
TILE = 512                # photos of twice this or more are also searched tile by tile (small faces)
TILED_SIDE = 2048         # ... in a copy reduced to at most this long


class FacesUnavailable(AnycostError):
    """The optional face-landmark package is not installed."""

    def __init__(self, detail: str):
        super().__init__("face alignment needs the optional mediapipe package, which is not installed "
                         f"({detail}); install it with `pip install 'anycost-editor[faces]'` (mediapipe 0.10.14, "
                         "Python 3.8-3.12), or project a square selection around the face with alignment off")


@dataclass(frozen=True)
class DetectedFace:
    box: tuple[float, float, float, float]   # x, y, w, h of the landmarks' extent, photo pixels
    points: np.ndarray                       # [5, 2]: left eye, right eye, nose tip, mouth left, mouth right
    mesh: np.ndarray                         # [468, 3]: x, y in photo pixels, z (depth) in the same unit
    score: float                             # the detector's confidence

    @property
    def yaw_degrees(self) -> float:
        """Left-right turn of the head from the eye corners' depth: 0 frontal, +-90 profile."""
        left, right = self.mesh[LEFT_EYE_OUTER], self.mesh[RIGHT_EYE_OUTER]
        return math.degrees(math.atan2(right[2] - left[2], math.hypot(*(right[:2] - left[:2]))))

    @property
    def size(self) -> float:
        return max(self.box[2], self.box[3])

    def describe(self) -> dict:
        return {"box": [round(v, 1) for v in self.box], "score": round(self.score, 3),
                "yaw": round(self.yaw_degrees, 1), "points": [[round(float(v), 2) for v in p] for p in self.points]}


def five_points(mesh: np.ndarray) -> np.ndarray:
    return np.stack([mesh[list(LEFT_EYE_CONTOUR), :2].mean(0), mesh[list(RIGHT_EYE_CONTOUR), :2].mean(0),
                     mesh[NOSE_TIP, :2], mesh[MOUTH_LEFT, :2], mesh[MOUTH_RIGHT, :2]])


WARM_UP_FACE = DEMO_FACE


@contextlib.contextmanager
def _native_stderr_quiet():
    """mediapipe's C++ side prints start-up notices (TFLite, absl) straight to file descriptor 2."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _protobuf_quiet():
    """mediapipe 0.10.14 calls a protobuf API that protobuf 4.25 marks deprecated, on every image."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="google.protobuf")
        yield


@contextlib.contextmanager
def _environment_kept():
    """OpenCV (a mediapipe dependency) sets QT_QPA_PLATFORM_PLUGIN_PATH and QT_QPA_FONTDIR to its own
    Qt plugins when imported; a Qt program started from this process afterwards (Krita, in the tests)
    would load them and abort. The import must leave the environment as it found it."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


def _mediapipe():
    try:
        with _protobuf_quiet(), _environment_kept():
            import mediapipe as mp
        return mp.solutions.face_detection, mp.solutions.face_mesh
    except ImportError as e:
        raise FacesUnavailable(str(e)) from None
    except Exception as e:  # a broken install (e.g. a protobuf it cannot use) fails in many ways
        raise FacesUnavailable(f"it failed to load: {type(e).__name__}: {e}") from None


class FaceDetector:
    """Finds faces with landmarks; keeps its mediapipe graphs, so one detector serves many photos.
    Not thread-safe (mediapipe graphs are not): one per thread."""

    def __init__(self, min_confidence: float = 0.5, max_faces: int = 16):
        detection, mesh = _mediapipe()
        self.max_faces = max_faces
        self._lock = threading.Lock()
        with _native_stderr_quiet():     # graphs print notices as they start: start them now, quietly
            self._detectors = [detection.FaceDetection(model_selection=m, min_detection_confidence=min_confidence)
                               for m in (1, 0)]       # full range (to 5 m), then short range (close-ups)
            self._mesh = mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                                       min_detection_confidence=min_confidence)
            face = np.asarray(Image.open(WARM_UP_FACE).convert("RGB").resize((MESH_INPUT, MESH_INPUT)))
            with _protobuf_quiet():
                for graph in (*self._detectors, self._mesh):
                    graph.process(face)

    def close(self) -> None:
        for g in (*self._detectors, self._mesh):
            g.close()

    def detect(self, photo: np.ndarray) -> list[DetectedFace]:
        """Faces in a uint8 [H, W, 3] photo, largest first."""
        assert photo.ndim == 3 and photo.shape[2] == 3 and photo.dtype == np.uint8, (photo.shape, photo.dtype)
        photo = np.ascontiguousarray(photo)
        with self._lock, _protobuf_quiet():
            boxes = self._find(photo)
            faces = [f for f in (self._landmarks(photo, b, s) for b, s in _suppress(boxes)) if f is not None]
        faces = [f for f, _ in _suppress([(f, f.score) for f in faces], box=lambda f: f.box, overlap=0.5)]
        faces.sort(key=lambda f: -f.size)
        return faces[: self.max_faces]

    def _find(self, photo: np.ndarray) -> list:
        """Detector boxes: the whole photo, and for a large photo also overlapping tiles (the full-range
        detector sees a 192 px copy, where a small face is a few pixels); else the short-range one."""
        h, w = photo.shape[:2]
        full_range, short_range = self._detectors
        boxes = _boxes(full_range, photo)
        if max(h, w) >= 2 * TILE:
            # tiles of a copy at most TILED_SIDE long: the search time stays bounded on huge photos
            k = min(1.0, TILED_SIDE / max(h, w))
            # PIL sets its filter names (Image.LANCZOS, ...) in a loop: mypy cannot see them
            small = photo if k == 1.0 else np.asarray(Image.fromarray(photo).resize(
                (round(w * k), round(h * k)), Image.BILINEAR))  # type: ignore[attr-defined]
            stride = TILE * 3 // 4
            for y in _starts(small.shape[0], stride):
                for x in _starts(small.shape[1], stride):
                    tile = np.ascontiguousarray(small[y:y + TILE, x:x + TILE])
                    boxes += [(tuple(v / k for v in b), sc) for b, sc in _boxes(full_range, tile, (x, y))]
        return boxes or _boxes(short_range, photo)

    def _landmarks(self, photo: np.ndarray, box, score: float) -> DetectedFace | None:
        h, w = photo.shape[:2]
        bx, by, bw, bh = box
        side = NEIGHBOURHOOD * max(bw, bh)
        x0, y0 = bx + bw / 2 - side / 2, by + bh / 2 - side / 2
        scale = MESH_INPUT / side
        # the neighbourhood, resized to MESH_INPUT (outside the photo: black, as mediapipe pads)
        # PIL sets its filter names (Image.LANCZOS, ...) in a loop: mypy cannot see them
        patch = Image.fromarray(photo).transform((MESH_INPUT, MESH_INPUT), Image.AFFINE,  # type: ignore[attr-defined]
                                                 (1 / scale, 0, x0, 0, 1 / scale, y0),
                                                 resample=Image.BILINEAR)  # type: ignore[attr-defined]
        result = self._mesh.process(np.asarray(patch))
        if not result.multi_face_landmarks:
            return None
        lm = result.multi_face_landmarks[0].landmark
        mesh = np.array([[p.x, p.y, p.z] for p in lm], dtype=np.float64) * MESH_INPUT / scale
        mesh[:, 0] += x0
        mesh[:, 1] += y0
        lo, hi = mesh[:, :2].min(0), mesh[:, :2].max(0)
        if hi[0] < 0 or hi[1] < 0 or lo[0] > w or lo[1] > h:
            return None
        return DetectedFace((float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])),
                            five_points(mesh), mesh, score)


def _starts(length: int, stride: int) -> list[int]:
    """Tile origins along one side: every `stride`, the last tile flush with the end."""
    if length <= TILE:
        return [0]
    return sorted({*range(0, length - TILE, stride), length - TILE})


def _boxes(detector, image: np.ndarray, origin=(0, 0)) -> list[tuple[tuple[float, float, float, float], float]]:
    """(box in photo pixels, score) of each face the detector finds in `image`, placed at `origin`."""
    h, w = image.shape[:2]
    out = []
    for d in detector.process(image).detections or []:
        b = d.location_data.relative_bounding_box
        out.append(((origin[0] + b.xmin * w, origin[1] + b.ymin * h, b.width * w, b.height * h), float(d.score[0])))
    return out


def _suppress(items, box=lambda b: b, overlap: float = 0.3):
    """Non-maximum suppression of (item, score) pairs: the most confident of overlapping boxes."""
    kept: list[tuple] = []
    for item, score in sorted(items, key=lambda b: -b[1]):
        if all(_iou(box(item), box(k)) < overlap for k, _ in kept):
            kept.append((item, score))
    return kept


def _iou(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter + 1e-9)
