"""A procedural face dataset: seeded, unlimited, any resolution, every image with its labels.

Faces are painted with Pillow at twice the resolution and downsampled (anti-aliasing). The
attributes a slider should control are drawn independently, so that a direction in W can isolate
each: `smile` (mouth curvature), `glasses`, `age` (grey hair, wrinkles), `hair_light` (hair
lightness), `hair_long`, `skin` (tone), plus nuisance factors (face shape, eye colour, pose,
background, lighting) that make the distribution rich enough for a GAN to have something to learn.
"""
from __future__ import annotations

import colorsys
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter

# Labels used as attributes (binary ones are 0/1; continuous ones in [0, 1] or [-1, 1] for smile).
ATTRIBUTES = ("smile", "glasses", "age", "hair_light", "hair_long", "skin")


@dataclass
class FaceParams:
    smile: float        # -1 (frown) .. 1 (broad smile)
    glasses: int        # 0 / 1
    age: float          # 0 young .. 1 old: grey hair share, wrinkles, thinner lips
    hair_light: float   # 0 black .. 1 blond
    hair_long: int      # 0 short / 1 long
    skin: float         # 0 light .. 1 dark
    face_width: float
    face_height: float
    eye_hue: float
    yaw: float          # horizontal shift of the features, -1..1
    roll: float         # degrees
    scale: float
    bg_hue: float
    bg_light: float
    light_dir: float    # -1 (light from left) .. 1 (right)
    hair_hue: float

    def labels(self) -> dict:
        return {k: getattr(self, k) for k in ATTRIBUTES}


N_FACTORS = 16   # independent uniforms that define one face (see params_from_uniforms)


def params_from_uniforms(u) -> FaceParams:
    """A face from 16 numbers in [0, 1): the renderer as a function, so a network can be taught it."""
    def lerp(i, a, b):
        return a + (b - a) * float(u[i])
    return FaceParams(
        age=float(u[0]) ** 1.3, smile=lerp(1, -1, 1), glasses=int(u[2] < 0.35), hair_light=float(u[3]),
        hair_long=int(u[4] < 0.5), skin=float(u[5]), face_width=lerp(6, 0.78, 1.08),
        face_height=lerp(7, 0.92, 1.1), eye_hue=float(u[8]), yaw=lerp(9, -1, 1), roll=lerp(10, -8, 8),
        scale=lerp(11, 0.9, 1.08), bg_hue=float(u[12]), bg_light=lerp(13, 0.3, 0.85), light_dir=lerp(14, -1, 1),
        hair_hue=lerp(15, 0.04, 0.11))


def sample_params(rng: random.Random) -> FaceParams:
    return params_from_uniforms([rng.random() for _ in range(N_FACTORS)])


def _rgb(h, s, v):
    return tuple(int(255 * c) for c in colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0), 1), min(max(v, 0), 1)))


def _mix(a, b, t):
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=True))


def skin_colour(p: FaceParams):
    light, dark = (241, 204, 178), (110, 72, 50)
    return _mix(light, dark, p.skin)


def hair_colour(p: FaceParams):
    base = _rgb(p.hair_hue, 0.55 - 0.25 * p.hair_light, 0.12 + 0.78 * p.hair_light)
    grey = (198, 198, 202)
    return _mix(base, grey, min(1.0, max(0.0, (p.age - 0.35) / 0.55)))


def draw_face(p: FaceParams, resolution: int) -> Image.Image:
    """Paint one face; the image is square, `resolution` px."""
    S = resolution * 2
    u = S / 256.0                                      # drawing unit: coordinates below are for 256 px
    img = Image.new("RGB", (S, S))
    d = ImageDraw.Draw(img)
    top, bottom = _rgb(p.bg_hue, 0.35, p.bg_light), _rgb(p.bg_hue + 0.05, 0.45, p.bg_light * 0.7)
    for y in range(S):
        d.line([(0, y), (S, y)], fill=_mix(top, bottom, y / S))
    background = img
    img = Image.new("RGBA", (S, S), (0, 0, 0, 0))     # the person, rotated as one layer (roll)
    d = ImageDraw.Draw(img)

    cx = 128 + 10 * p.yaw
    fw, fh = 58 * p.face_width * p.scale, 74 * p.face_height * p.scale
    cy = 124
    skin, hair = skin_colour(p), hair_colour(p)
    shade = _mix(skin, (0, 0, 0), 0.18)

    def box(x0, y0, x1, y1):
        return [x0 * u, y0 * u, x1 * u, y1 * u]

    # shoulders and neck
    d.ellipse(box(cx - 95, 205, cx + 95, 330), fill=_rgb(p.bg_hue + 0.5, 0.45, 0.45))
    d.rectangle(box(cx - 20, cy + fh - 20, cx + 20, 222), fill=shade)
    # hair behind the head (long hair falls to the shoulders)
    if p.hair_long:
        d.rounded_rectangle(box(cx - fw - 14, cy - fh - 10, cx + fw + 14, cy + fh + 40), radius=40 * u, fill=hair)
    else:
        d.ellipse(box(cx - fw - 8, cy - fh - 14, cx + fw + 8, cy + fh * 0.35), fill=hair)
    # ears and face
    for side in (-1, 1):
        ex = cx + side * fw
        d.ellipse(box(ex - 9, cy - 12, ex + 9, cy + 16), fill=shade)
    d.ellipse(box(cx - fw, cy - fh, cx + fw, cy + fh), fill=skin)
    # fringe
    d.chord(box(cx - fw - 4, cy - fh - 12, cx + fw + 4, cy - fh * 0.15), 180, 360, fill=hair)

    # eyes, brows
    eye_y = cy - fh * 0.12
    eye_dx = fw * 0.42
    iris = _rgb(p.eye_hue, 0.55, 0.45)
    brow = _mix(hair, (40, 30, 25), 0.4)
    for side in (-1, 1):
        ex = cx + side * eye_dx + 4 * p.yaw
        d.ellipse(box(ex - 10, eye_y - 5.5, ex + 10, eye_y + 5.5), fill=(248, 248, 246))
        d.ellipse(box(ex - 5, eye_y - 5, ex + 5, eye_y + 5), fill=iris)
        d.ellipse(box(ex - 2, eye_y - 2, ex + 2, eye_y + 2), fill=(15, 15, 15))
        by = eye_y - 13 - 2 * p.smile
        d.line([((ex - 12) * u, by * u), ((ex + 12) * u, (by - 1.5) * u)], fill=brow, width=max(1, int(3.5 * u)))
        if p.age > 0.45:   # crow's feet and under-eye lines
            k = (p.age - 0.45) / 0.55
            line = _mix(skin, (90, 60, 50), 0.35 * k + 0.1)
            ox = ex + side * 13
            for t in (-3, 0, 3):
                d.line([(ox * u, (eye_y + t) * u), ((ox + side * 6) * u, (eye_y + t * 1.6) * u)], fill=line,
                       width=max(1, int(1.2 * u)))
            d.arc(box(ex - 9, eye_y + 2, ex + 9, eye_y + 11), 20, 160, fill=line, width=max(1, int(1.2 * u)))
    # nose
    nx = cx + 6 * p.yaw
    d.line([(nx * u, (eye_y + 6) * u), ((nx - 4) * u, (cy + fh * 0.28) * u), ((nx + 4) * u, (cy + fh * 0.3) * u)],
           fill=shade, width=max(1, int(2.5 * u)))
    # mouth: curvature is the smile
    my = cy + fh * 0.55
    mw = fw * 0.42 * (1 + 0.15 * max(p.smile, 0))
    lip = _mix((190, 80, 85), skin, 0.25 + 0.35 * p.age)
    mx = cx + 5 * p.yaw
    curve = 14 * p.smile
    # corners (t = +-1) rise above the centre for a smile: image y grows downwards
    pts = [((mx + mw * t) * u, (my - curve / 2 + curve * (1 - t * t)) * u) for t in [i / 10 - 1 for i in range(21)]]
    d.line(pts, fill=lip, width=max(1, int((4.5 - 1.5 * p.age) * u)), joint="curve")
    if p.smile > 0.55:   # teeth of a broad smile
        inner = [((mx + mw * 0.7 * t) * u, (my - curve / 2 + curve * 0.75 * (1 - t * t) + 1.5) * u)
                 for t in [i / 10 - 1 for i in range(21)]]
        d.line(inner, fill=(245, 245, 240), width=max(1, int(2.5 * u)))
    if p.age > 0.6:      # nasolabial folds
        line = _mix(skin, (90, 60, 50), 0.35)
        for side in (-1, 1):
            d.arc(box(mx + side * mw - 10, my - 26, mx + side * mw + 10, my + 4), 200 if side < 0 else -20,
                  250 if side < 0 else 30, fill=line, width=max(1, int(1.5 * u)))
    # glasses
    if p.glasses:
        frame = (30, 30, 35)
        for side in (-1, 1):
            ex = cx + side * eye_dx + 4 * p.yaw
            d.rounded_rectangle(box(ex - 16, eye_y - 11, ex + 16, eye_y + 11), radius=6 * u, outline=frame,
                                width=max(1, int(3 * u)))
        d.line([((cx - eye_dx + 16 + 4 * p.yaw) * u, eye_y * u), ((cx + eye_dx - 16 + 4 * p.yaw) * u, eye_y * u)],
               fill=frame, width=max(1, int(3 * u)))

    # PIL sets its filter names (Image.LANCZOS, ...) in a loop: mypy cannot see them
    img = img.rotate(p.roll, resample=Image.BILINEAR, center=(cx * u, cy * u))  # type: ignore[attr-defined]
    img = Image.alpha_composite(background.convert("RGBA"), img).convert("RGB")
    # lighting: a horizontal brightness ramp
    ramp = Image.linear_gradient("L").rotate(90 if p.light_dir > 0 else -90).resize((S, S))
    light = Image.new("RGB", (S, S), (255, 255, 255) if p.light_dir > 0 else (0, 0, 0))
    img = Image.composite(light, img, ramp.point(lambda v: int(v * 0.18 * abs(p.light_dir))))
    return img.filter(ImageFilter.GaussianBlur(0.6 * u)).resize((resolution, resolution),
                                                                Image.LANCZOS)  # type: ignore[attr-defined]


def landmarks(p: FaceParams, resolution: int):
    """Where `draw_face` puts the eye centres, nose tip and mouth corners, in pixels of its image
    ([5, 2]: left eye, right eye, nose tip, mouth left, mouth right, as image left/right): the ground
    truth for face alignment."""
    import math

    import numpy as np
    cx, cy = 128 + 10 * p.yaw, 124
    fw, fh = 58 * p.face_width * p.scale, 74 * p.face_height * p.scale
    eye_y, eye_dx = cy - fh * 0.12, fw * 0.42
    mw, mx, my = fw * 0.42 * (1 + 0.15 * max(p.smile, 0)), cx + 5 * p.yaw, cy + fh * 0.55
    corner_y = my - 14 * p.smile / 2
    pts = np.array([[cx - eye_dx + 4 * p.yaw, eye_y], [cx + eye_dx + 4 * p.yaw, eye_y],
                    [cx + 6 * p.yaw, cy + fh * 0.29], [mx - mw, corner_y], [mx + mw, corner_y]])
    a = math.radians(p.roll)       # Image.rotate turns counter-clockwise on screen (y grows downwards)
    d = pts - [cx, cy]
    rotated = np.stack([cx + d[:, 0] * math.cos(a) + d[:, 1] * math.sin(a),
                        cy - d[:, 0] * math.sin(a) + d[:, 1] * math.cos(a)], axis=1)
    return rotated * resolution / 256


def labels(seed: int) -> dict:
    """The labels of `seed`'s face, without drawing it."""
    return sample_params(random.Random(seed)).labels()


def face(seed: int, resolution: int) -> tuple[Image.Image, dict]:
    """The face of `seed`: the same image and labels on every call and machine."""
    p = sample_params(random.Random(seed))
    return draw_face(p, resolution), p.labels()




def faces_of_latents(z, resolution: int):
    """The renderer's face for each latent [N, D >= 16]: its first 16 entries, mapped through the normal
    CDF, are the face's uniforms. What the renderer warm start teaches G(z) to draw. -> [N, 3, R, R]."""
    import torch

    from anycost.core.imaging import from_pil
    u = 0.5 * (1 + torch.erf(z[:, :N_FACTORS] / 2 ** 0.5))
    return torch.stack([from_pil(draw_face(params_from_uniforms(row.tolist()), resolution)) for row in u])
