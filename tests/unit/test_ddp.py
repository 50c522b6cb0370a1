"""Multi-process training through torchrun + DistributedDataParallel (flowviz.images.ddp), on
the CPU with the gloo backend: two ranks, FM and MeanFlow (its JVP calls the bare module). The
GPU scaling figures are in benchmarks/RESULTS.md (device machine)."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from flowviz import checkpoint
from flowviz.images.experiment import ImageRun
from flowviz.models import UNetConfig
from flowviz.train import OptimConfig

ROOT = Path(__file__).resolve().parents[2]
RUN = ImageRun(size=8, batch=4, model=UNetConfig(size=8, base=8, mults=(1, 2), groups=4, emb=16),
               optim=OptimConfig(steps=100, lr=1e-3, warmup=1))


@pytest.mark.parametrize("method", ["fm", "meanflow"])
def test_two_ranks_keep_equal_weights_and_rank0_saves_a_loadable_checkpoint(tmp_path, method):
    cfg = tmp_path / "run.json"
    run = dataclasses.replace(RUN, method=method)
    cfg.write_text(run.to_json())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "flowviz.images.ddp", "--config", str(cfg), "--steps", "3", "--warm", "1",
         "--synthetic", "--out", str(tmp_path / "ck.pt"), "--json", str(tmp_path / "r.json")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        _, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both ranks: no stray workers
        raise
    assert proc.returncode == 0, err[-2000:]
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["world"] == 2 and res["status"] == "running" and res["steps"] == 3
    assert res["max_weight_spread"] == 0.0  # DDP kept the two ranks' weights identical
    loaded_run, state = checkpoint.load(tmp_path / "ck.pt")  # weights_only inside
    assert loaded_run == run and state.step == 4  # warm-up step + 3 timed steps
