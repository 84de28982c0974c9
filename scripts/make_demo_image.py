"""Write the aligned face crop of the demo photo (backend/anycost/data/demo-face.png).

The photo is skimage's `astronaut` (Eileen Collins, a NASA portrait in the public domain), shipped as
backend/anycost/data/astronaut.jpg. Its face is found by mediapipe and aligned with the built-in demo
model's face-crop rule at 256 px: `anycost-backend demo` edits this crop when mediapipe is not
installed, the model card projects it, and the tests open it. Rerun after the rule changes.
"""

import numpy as np
from PIL import Image

from anycost.core.defaults import DEMO_FACE, DEMO_PHOTO
from anycost.editing.faces.detection import FaceDetector
from anycost.editing.faces.photo import align_photo
from anycost.editing.faces.recipes import model_recipe
from anycost.formats.registry import open_model

PHOTO, OUT = DEMO_PHOTO, DEMO_FACE


def main() -> None:
    recipe = model_recipe(open_model("demo").metadata)
    if recipe is None:
        raise SystemExit("the demo model declares no face-crop rule: run `anycost-train alignment` first")
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    detector = FaceDetector()
    try:
        aligned = align_photo(photo, recipe, 256, detector)
    finally:
        detector.close()
    Image.fromarray(aligned.crop).save(OUT, optimize=True)
    print(f"wrote {OUT} (face {aligned.rect} of {PHOTO.name})")


if __name__ == "__main__":
    main()
