"""Model files: the one model record and loader for every kind (checkpoints), CREPS files and their
conversion (creps), and the resolver of names, files and `random:` specs with its downloads (registry)."""
