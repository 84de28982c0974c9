#!/usr/bin/env bash
# Set up everything in .venv (first run only), then run the main job on the built-in default model.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
exec .venv/bin/anycost-backend demo "$@"
