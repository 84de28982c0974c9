"""Benchmarks that print and save their figures (`anycost-backend bench`): every sub-generator's
latency and MACs (synthesis.py), the daemon end to end (e2e.py), its memory (memory.py), CREPS per
output size (creps.py), and the per-layer channel search under a latency budget (layer_search.py)."""
