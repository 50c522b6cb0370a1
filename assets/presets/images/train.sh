#!/usr/bin/env bash
# Retrain the digits presets of the Scaling page with the project's CLI (issue 7), on a GPU if
# there is one: the classifier of the quality metric; FM -> 2-RF -> distilled student in order
# (each stage's teacher is the previous preset); Shortcut and MeanFlow alongside. Then the
# classifier-feature Fréchet distance and confidence of every preset at every NFE.
#   bash assets/presets/images/train.sh [runs_dir] [quality.json]
set -euo pipefail
D=$(dirname "$0")
R=${1:-runs/image-presets}
Q=${2:-$R/quality.json}
PY=${PYTHON:-python3}
mkdir -p "$R"
img() { "$PY" -m flowviz image "$@"; }
train() { img train --config "$D/digits-$1.json" --out "$R/$1.pt" --preset "$D/digits-$1.pt" \
                    --grids "$R/grids-$1" --chunk 2000; }
img classifier --out "$D/digits-classifier.pt" --steps 4000 --width 48 --augment affine \
    --weight-decay 1e-4 > "$R/classifier.log" 2>&1 &
(train fm && train reflow && train distill) > "$R/chain.log" 2>&1 &
train shortcut > "$R/shortcut.log" 2>&1 &
train meanflow > "$R/meanflow.log" 2>&1 &
wait
img eval "$D"/digits-{fm,reflow,distill,shortcut,meanflow}.pt \
    --classifier "$D/digits-classifier.pt" --json "$Q"
