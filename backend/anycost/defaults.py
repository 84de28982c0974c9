"""Names shared by the library and the command line, kept free of heavy imports so that
`anycost-backend --help` and `status` start without loading torch."""

DEFAULT_MODEL = "demo"                   # the built-in model shipped inside the package
TRAINED_RATIOS = (1.0, 0.75, 0.5, 0.25)  # the uniform channel ratios the paper trains (CHANNEL_CONFIGS)
