"""Draw the portrait that `anycost-backend demo` projects by default (backend/anycost/data/demo-face.png).

A simple painted face (Pillow only, deterministic), so the package ships an input that needs no
download and carries no one's likeness.
"""
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

S = 256
OUT = Path(__file__).resolve().parents[1] / "backend" / "anycost" / "data" / "demo-face.png"


def main() -> None:
    img = Image.new("RGB", (S, S))
    d = ImageDraw.Draw(img)
    for y in range(S):  # background: a soft vertical gradient
        t = y / S
        d.line([(0, y), (S, y)], fill=(int(70 + 60 * t), int(95 + 50 * t), int(140 + 40 * t)))
    d.ellipse([40, 150, 216, 330], fill=(60, 70, 110))                 # shoulders
    d.rectangle([108, 170, 148, 215], fill=(214, 170, 140))             # neck
    d.ellipse([52, 22, 204, 150], fill=(92, 58, 34))                    # hair, back
    d.ellipse([70, 45, 186, 200], fill=(228, 186, 156))                 # face
    d.chord([66, 30, 190, 120], 180, 360, fill=(92, 58, 34))            # fringe
    for cx in (103, 153):
        d.ellipse([cx - 13, 108, cx + 13, 124], fill=(250, 250, 250))   # eyes
        d.ellipse([cx - 6, 109, cx + 6, 123], fill=(70, 90, 60))
        d.ellipse([cx - 2, 113, cx + 2, 118], fill=(20, 20, 20))
        d.line([(cx - 15, 98), (cx + 14, 96)], fill=(80, 50, 30), width=4)   # brows
    d.line([(128, 120), (122, 150), (132, 152)], fill=(190, 140, 115), width=3)  # nose
    d.arc([104, 150, 152, 180], 20, 160, fill=(170, 70, 70), width=4)   # mouth, a slight smile
    d.ellipse([80, 140, 100, 156], fill=(236, 168, 150))                # cheeks
    d.ellipse([156, 140, 176, 156], fill=(236, 168, 150))
    img = img.filter(ImageFilter.GaussianBlur(1.2))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    img.save(OUT, optimize=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
