#!/usr/bin/env bash
# The pictures in docs/krita-plugin.md and docs/gimp-plugin.md: real Krita (the astronaut photo,
# face aligned) and real GIMP 3's dialog, on a 1366×768 virtual screen, by the real-editor tests.
# Needs what .ci/run installs (Krita, Xvfb, the GIMP 3 root; root for the chroot).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
export ANYCOST_SCREENSHOTS="$PWD/docs/images"
.venv/bin/python -m pytest -q -p no:cacheprovider \
    "tests/editors/test_krita_real.py::test_docker_in_real_krita[demo-True-krita-5.1]" \
    "tests/editors/test_gimp_real.py::test_interactive_dialog"
ls -l docs/images
