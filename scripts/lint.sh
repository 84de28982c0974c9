#!/usr/bin/env bash
# Lint (ruff) and type-check (mypy) the project, configured in pyproject.toml; run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/mypy
