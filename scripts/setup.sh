#!/usr/bin/env bash
# Create .venv at the repository root and install the project into it (idempotent).
#
# torch: ANYCOST_TORCH overrides what is installed (default: "torch==2.14.1 torchvision==0.29.1",
# a build whose torchvision imports cleanly next to it, which lpips needs). An already working
# torch in .venv is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($PY --version)"
    "$PY" -m venv .venv
fi
VPY=.venv/bin/python
LOG=.venv/setup.log
pip_install() {  # quiet unless it fails; the full output stays in .venv/setup.log
    if ! "$VPY" -m pip install "$@" >>"$LOG" 2>&1; then
        tail -n 30 "$LOG" >&2
        echo "setup: pip install $* failed; full log in $LOG" >&2
        exit 1
    fi
}
if ! "$VPY" -c "import torch, torchvision" >/dev/null 2>&1; then
    echo "setup: installing torch (${ANYCOST_TORCH:-torch==2.14.1 torchvision==0.29.1})"
    pip_install --upgrade pip
    # shellcheck disable=SC2086
    pip_install ${ANYCOST_TORCH:-torch==2.14.1 torchvision==0.29.1}
fi
stamp=.venv/.anycost-installed
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing anycost-editor (editable), face alignment, training and test tools"
    pip_install -e ".[test,faces,train]"
    # the demo model's teacher (MIT code; its weights inside the wheel): without its declared
    # dependencies, which only its training script uses
    pip_install --no-deps gan-face-generate==1.1.1
    touch "$stamp"
fi
