"""Real photos: find faces, align them the way a model was trained, and put edits back.

`recipes` (the crop rule a model declares), `geometry` (the similarity transform and the warps both
ways), `blending` (the soft face mask and the compositing), `detection` (mediapipe landmarks, an
optional dependency) and `photo` (the three together: photo -> aligned crop -> composited photo).
"""
