#!/usr/bin/env bash
# Multi-GPU scaling of image training (issue 7): torchrun + DDP (flowviz.images.ddp) on 1 and 2
# GPUs, CIFAR-shaped synthetic batches of 128 per GPU, the ~35M U-Net, the flowviz loop; FM in
# fp32 and bf16, and MeanFlow (its JVP under DDP) with the weights checked equal on every rank.
#   bash benchmarks/bench_ddp_images.sh OUT_DIR [GPUS]
set -uo pipefail
O=${1:-runs/ddp}; N=${2:-2}; PY=${PYTHON:-python3}
mkdir -p "$O"
cfg() {  # method precision -> JSON path
  "$PY" - "$1" "$2" "$O/$1-$2.json" <<'PY'
import dataclasses, json, sys
from flowviz.images.experiment import ImageRun
from flowviz.models import CIFAR_UNET
from flowviz.train import OptimConfig
m, p, path = sys.argv[1:]
run = ImageRun(method=m, data="cifar10", root="(synthetic)", size=32, batch=128,
               model=CIFAR_UNET, precision=p, channels_last=p == "bf16",
               optim=OptimConfig(steps=10**6, lr=2e-4, warmup=0))
open(path, "w").write(json.dumps(dataclasses.asdict(run)))
PY
  echo "$O/$1-$2.json"
}
for mp in "fm fp32" "fm bf16" "meanflow fp32"; do
  set -- $mp; c=$(cfg "$1" "$2")
  for g in 1 "$N"; do
    steps=60; [ "$1" = meanflow ] && steps=30
    "$PY" -m torch.distributed.run --standalone --nproc_per_node="$g" -m flowviz.images.ddp \
      --config "$c" --synthetic --steps $steps --warm 10 --json "$O/ddp-$1-$2-$g.json" \
      > "$O/ddp-$1-$2-$g.log" 2>&1 || tail -5 "$O/ddp-$1-$2-$g.log"
    cat "$O/ddp-$1-$2-$g.json" 2>/dev/null; echo
  done
done
