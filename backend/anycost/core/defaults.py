"""Names shared by the library and the command line, kept free of heavy imports so that
`anycost-backend --help` and `status` start without loading torch."""
from pathlib import Path

DEFAULT_MODEL = "demo"                   # the built-in model shipped inside the package
TRAINED_RATIOS = (1.0, 0.75, 0.5, 0.25)  # the uniform channel ratios the paper trains (CHANNEL_CONFIGS)

DATA_DIR = Path(__file__).parents[1] / "data"   # the files shipped inside the package
DEMO_PHOTO = DATA_DIR / "astronaut.jpg"          # skimage's astronaut: Eileen Collins, public domain (NASA)
DEMO_FACE = DATA_DIR / "demo-face.png"           # its face, aligned with the demo model's crop rule
