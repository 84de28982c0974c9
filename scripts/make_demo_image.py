"""Draw the portrait that `anycost-backend demo` projects by default (backend/anycost/data/demo-face.png).

A held-out face of the procedural dataset the built-in demo model was trained on (seeds from
6,000,000 on are never used in training), chosen so that every slider has room to move: no
glasses, a near-neutral mouth, young. Deterministic; no download, no one's likeness.
"""
from pathlib import Path

from anycost_train.faces import face, labels

OUT = Path(__file__).resolve().parents[1] / "backend" / "anycost" / "data" / "demo-face.png"
FIRST_SEED = 6_000_000


def pick_seed() -> int:
    seed = FIRST_SEED
    while True:
        lab = labels(seed)
        if lab["glasses"] == 0 and abs(lab["smile"]) < 0.25 and lab["age"] < 0.3 and 0.3 < lab["skin"] < 0.7:
            return seed
        seed += 1


def main() -> None:
    seed = pick_seed()
    img, lab = face(seed, 256)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    img.save(OUT, optimize=True)
    print(f"wrote {OUT} (seed {seed}: {lab})")


if __name__ == "__main__":
    main()
