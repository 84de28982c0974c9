#!/usr/bin/env bash
# The measurements of docs/adapt.md: the stylegan2-ada fixture (NVIDIA's pickle, random weights, so its
# sub-generators start inconsistent) adapted without data in three ways, beside the paper's stage 2
# with data on the same model; then adapt-report. Resumable: a finished run is skipped, an unfinished
# one continues (--resume). Usage: scripts/adapt_experiment.sh [OUT_DIR] [ITERS]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/adapt-experiment}
ITERS=${2:-1500}
PKL=${ANYCOST_FIXTURES:-../shared/fixtures}/stylegan2-ada/sg2ada_small_64.pkl
T=".venv/bin/anycost-train --threads 1"
mkdir -p "$OUT"
COMMON=(--iters "$ITERS" --batch 8 --lr 0.0005 --ema-kimg 1 --checkpoint-every 250 --sample-every 500 --log-every 50)

adapt() {  # LABEL, extra options
    local label=$1; shift
    [ -f "$OUT/$label.safetensors" ] && return 0
    if [ -f "$OUT/$label.run/train-state.pt" ]; then
        $T adapt --model "$PKL" --out "$OUT/$label.safetensors" --resume --iters "$ITERS"
    else
        $T adapt --model "$PKL" --out "$OUT/$label.safetensors" "${COMMON[@]}" "$@"
    fi
}

stage2_with_data() {  # the paper's stage 2 (adaptive channels + consistency + conditioned D) on procedural faces
    [ -f "$OUT/stage2-data.run/latest.safetensors" ] && [ "$(.venv/bin/python -c "import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])['step'])" "$OUT/stage2-data.run/log.jsonl")" = "$ITERS" ] && return 0
    .venv/bin/python - "$PKL" "$OUT/stage2.toml" <<'PY'
import sys
from anycost.formats.checkpoints import load_model
cfg = load_model(sys.argv[1]).generator.cfg.to_dict()
ch = ", ".join(f'"{k}" = {v}' for k, v in cfg["channels"].items())
open(sys.argv[2], "w").write(
    f'stage = "adach"\narch = "custom"\ninit = "{sys.argv[1]}"\ndata = "procedural"\nn_res = 4\n'
    f'[generator]\nresolution = {cfg["resolution"]}\nstyle_dim = {cfg["style_dim"]}\nn_mlp = {cfg["n_mlp"]}\n'
    f'lr_mlp = {cfg["lr_mlp"]}\nconv_clamp = {cfg["conv_clamp"]}\nchannels = {{ {ch} }}\n')
PY
    if [ -f "$OUT/stage2-data.run/train-state.pt" ]; then
        $T train --out "$OUT/stage2-data.run" --resume --iters "$ITERS"
    else
        $T train --config "$OUT/stage2.toml" --out "$OUT/stage2-data.run" "${COMMON[@]}"
    fi
}

adapt free --anchor-weight 0 &
adapt anchored --anchor-weight 10
wait
adapt anchored-d --anchor-weight 10 --adv-weight 0.1 &
stage2_with_data
wait
$T adapt-report --original "$PKL" --out "$OUT/report.md" \
    --run "adapt, no anchor=$OUT/free.safetensors@$OUT/free.run" \
    --run "adapt, anchor 10=$OUT/anchored.safetensors@$OUT/anchored.run" \
    --run "adapt, anchor 10 + D=$OUT/anchored-d.safetensors@$OUT/anchored-d.run" \
    --run "stage 2 with data=$OUT/stage2-data.run/latest.safetensors@$OUT/stage2-data.run"
