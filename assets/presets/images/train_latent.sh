#!/usr/bin/env bash
# Retrain the latent presets of the Scaling page's "Latent space" tab on a CPU (issue 7): one
# conv autoencoder (k = 16 codes of the 16x16 digits) fitted with the FM run, then FM, Shortcut
# and MeanFlow flows on its codes (the Shortcut and MeanFlow runs reuse that autoencoder), then
# the classifier-feature Fréchet distance and confidence of the decoded samples at every NFE.
#   bash assets/presets/images/train_latent.sh [log_dir]
set -euo pipefail
D=$(dirname "$0")
R=${1:-runs/latent-presets}
PY=${PYTHON:-python3}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # one thread per training: two run side by side
mkdir -p "$R"
lat() { "$PY" -m flowviz image latent --config "$D/latent-ae-$1.json" --out "$D/latent-ae-$1.pt" \
                                      --grids "$R/grids-$1" --chunk 1000 "${@:2}"; }
lat fm 2>&1 | tee "$R/fm.log"
lat shortcut --encoder "$D/latent-ae-fm.pt" > "$R/shortcut.log" 2>&1 &
lat meanflow --encoder "$D/latent-ae-fm.pt" 2>&1 | tee "$R/meanflow.log"
wait
"$PY" -m flowviz image eval "$D"/latent-ae-{fm,shortcut,meanflow}.pt \
    --classifier "$D/digits-classifier.pt" --json "$D/latent-quality.json" | tee "$R/eval.log"
