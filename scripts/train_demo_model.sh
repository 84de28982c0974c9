#!/usr/bin/env bash
# The recipe of the built-in demo model (backend/anycost/data/demo.safetensors) and its docs page,
# as run on a 2-core CPU. Every step is resumable: rerun a step with `--resume` added after an
# interruption. RUNS (default runs/) holds the training folders; nothing there is shipped.
# WARM_ITERS=N trains the warm start further (a started run is continued exactly).
# On a lent GPU: DEVICE=cuda PY=python3 (a Python with torch; PYTHONPATH=backend:training) runs every
# training step there as one process (see docs/training.md, "On a GPU").
#
#   scripts/train_demo_model.sh [all|warm|stage2|encoder|directions|release|docs]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
PY=${PY:-.venv/bin/python}
DEVICE=${DEVICE:-cpu}
TRAIN=("$PY" -m anycost_train.cli)
ON=(--device "$DEVICE")
STAGE2_ITERS=${STAGE2_ITERS:-300}
step=${1:-all}

warm() {      # renderer warm start, both cores as two gloo processes; continues a started run
    local args=(--preset demo-warm)
    [ -f "$RUNS/demo-warm/train-state.pt" ] && args=(--resume)
    [ "${args[0]}" = --preset ] && args+=("${ON[@]}")
    if [ "$DEVICE" = cpu ]; then
        OMP_NUM_THREADS=1 "$PY" -m torch.distributed.run --standalone --nproc_per_node 2 -m anycost_train.cli \
            --threads 1 train "${args[@]}" ${WARM_ITERS:+--iters "$WARM_ITERS"} --out "$RUNS/demo-warm"
    else
        "${TRAIN[@]}" train "${args[@]}" ${WARM_ITERS:+--iters "$WARM_ITERS"} --out "$RUNS/demo-warm"
    fi
}
stage2() {    # the paper's stage 2 and its ablation, side by side, one core each
    OMP_NUM_THREADS=1 "${TRAIN[@]}" --threads 1 train --preset demo --stage adach --iters "$STAGE2_ITERS" "${ON[@]}" \
        --init "$RUNS/demo-warm/latest.safetensors" --out "$RUNS/demo-adach" &
    OMP_NUM_THREADS=1 "${TRAIN[@]}" --threads 1 train --preset demo --stage adach --iters "$STAGE2_ITERS" "${ON[@]}" \
        --consistency-weight 0 --no-conditioned-d \
        --init "$RUNS/demo-warm/latest.safetensors" --out "$RUNS/demo-ablation" &
    wait
}
encoder() {
    "${TRAIN[@]}" encoder --model "$RUNS/demo-adach/latest.safetensors" --out "$RUNS/demo-enc" --steps 400 "${ON[@]}"
}
directions() {
    "${TRAIN[@]}" directions --model "$RUNS/demo-enc/model.safetensors" --out "$RUNS/demo-enc/model-dirs.safetensors"
}
release() {
    "${TRAIN[@]}" release --model "$RUNS/demo-enc/model-dirs.safetensors" --out backend/anycost/data/demo.safetensors \
        --ablation "without consistency loss and conditioned D=$RUNS/demo-ablation/latest.safetensors" \
        --ablation "warm start only=$RUNS/demo-warm/latest.safetensors"
    # the face-crop rule of the procedural faces, for photos (docs/faces.md)
    "${TRAIN[@]}" alignment --model backend/anycost/data/demo.safetensors
}
docs() {
    "${TRAIN[@]}" model-card --model backend/anycost/data/demo.safetensors --out docs/demo-model.md
    "${TRAIN[@]}" report --model backend/anycost/data/demo.safetensors --out docs/editing-report.md
}

case "$step" in
    all) warm; stage2; encoder; directions; release; docs ;;
    warm|stage2|encoder|directions|release|docs) "$step" ;;
    *) echo "usage: $0 [all|warm|stage2|encoder|directions|release|docs]" >&2; exit 2 ;;
esac
