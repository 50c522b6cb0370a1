#!/usr/bin/env bash
# Retrain the digits presets of the Scaling page with the project's CLI (issue 7), on a GPU if
# there is one: the classifier of the quality metric; FM -> 2-RF -> distilled student in order
# (each stage's teacher is the previous preset); Shortcut and MeanFlow alongside. Then the
# classifier-feature Fréchet distance and confidence of every preset at every NFE. Also the
# class-conditional FM preset (labels dropped with p 0.1: classifier-free guidance) and its
# share of samples classified as the class they were conditioned on, at NFE 32 for w 0, 1, 2, 4.
#   [COMPILE=1] bash assets/presets/images/train.sh [runs_dir] [quality.json] [cfg_quality.json]
# (COMPILE=1: torch.compile every training, as the MeanFlow preset was trained on the GPU)
set -euo pipefail
D=$(dirname "$0")
R=${1:-runs/image-presets}
Q=${2:-$R/quality.json}
CQ=${3:-$R/cfg_quality.json}
PY=${PYTHON:-python3}
mkdir -p "$R"
img() { "$PY" -m flowviz image "$@"; }
train() { img train --config "$D/digits-$1.json" --out "$R/$1.pt" --preset "$D/digits-$1.pt" \
                    --grids "$R/grids-$1" --chunk 2000 ${COMPILE:+--compile}; }
img classifier --out "$D/digits-classifier.pt" --steps 4000 --width 48 --augment affine \
    --weight-decay 1e-4 > "$R/classifier.log" 2>&1 &
(train fm && train reflow && train distill) > "$R/chain.log" 2>&1 &
train shortcut > "$R/shortcut.log" 2>&1 &  # digits-shortcut.json: sc_frac 0.75, batch 512, 16k steps
train meanflow > "$R/meanflow.log" 2>&1 &  # the CIFAR recipe (frac_neq 0.75, logit-normal (2, 2), p 0.75),
                                           # JVP along the net's own field (tangent "model", iMF)
train fm-cfg > "$R/fm-cfg.log" 2>&1 &  # digits-fm-cfg.json: model.n_classes 10, label_drop 0.1
wait
img eval "$D"/digits-{fm,reflow,distill,shortcut,meanflow}.pt \
    --classifier "$D/digits-classifier.pt" --json "$Q"
img eval "$D/digits-fm-cfg.pt" --classifier "$D/digits-classifier.pt" --nfe 32 \
    --guidance 0 1 2 4 --json "$CQ"
