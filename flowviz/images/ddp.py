"""Multi-GPU training with torchrun + torch DistributedDataParallel (one process per GPU).

    torchrun --nproc_per_node=2 -m flowviz.images.ddp --config run.json --steps 200 [--out ck.pt]

Each process builds the same ImageRun state (flowviz.images.experiment), draws its own batches
(generator seeded with seed + rank) and trains with flowviz.train.train_steps; DDP averages the
gradients in backward, so the effective batch is world_size x run.batch. Only gradient-carrying
calls go through DDP: no-grad ones (Shortcut's target, MeanFlow's JVP target, sampling) call the
bare network, which holds the same weights on every rank. Rank 0 prints images/s and saves.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..args import Parser, bounded, writable_file
from ..config import read_json
from ..train import train_steps
from .experiment import ImageRun, build_image


class DDPModel(nn.Module):
    """``model(...)`` through DDP when autograd records (gradients all-reduced in backward), the
    bare module otherwise. Parameters, state_dict and EMA pairing are the module's own order."""

    def __init__(self, module: nn.Module, **kw):
        super().__init__()
        self.ddp = DistributedDataParallel(module, **kw)

    @property
    def module(self) -> nn.Module:
        return self.ddp.module

    def forward(self, *args, **kw):
        return self.ddp(*args, **kw) if torch.is_grad_enabled() else self.ddp.module(*args, **kw)


def synthetic(run: ImageRun, n: int = 4096, seed: int = 0):
    """Random images of the run's shape in [-1, 1] (for throughput only)."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *run.model.dims, generator=g) * 2 - 1, torch.zeros(n, dtype=torch.long)


def main(argv=None) -> int:
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="an ImageRun JSON")
    p.add_argument("--steps", type=bounded(1, 1_000_000), default=100,
                   help="timed steps (after --warm)")
    p.add_argument("--warm", type=bounded(0, 100_000), default=10)
    p.add_argument("--synthetic", action="store_true", help="random images (throughput)")
    p.add_argument("--out", help="rank 0 saves a checkpoint here")
    p.add_argument("--json", help="rank 0 writes its measurements here")
    a = p.parse_args(argv)
    try:  # before any process group: a bad config or path is one line, exit code 2
        run = read_json(a.config, ImageRun)
        for path in (a.out, a.json):
            if path:
                writable_file(path)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", 0))
    dev = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    state = build_image(run, dev, images=synthetic(run) if a.synthetic else None)
    state.generator.manual_seed(run.optim.seed + rank)  # each rank its own batches
    state.model = DDPModel(state.model, device_ids=[local] if dev.type == "cuda" else None)
    if state.ema is not None:  # DDP broadcast rank 0's weights: start the EMA from them
        state.ema.load_state_dict(state.model.module.state_dict())
    train_steps(state, a.warm, log_every=10**9)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dist.barrier()
    t0 = time.perf_counter()
    train_steps(state, a.steps, log_every=max(1, a.steps // 5))
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dist.barrier()
    sec = time.perf_counter() - t0
    # the weights must agree on every rank (DDP kept them in sync)
    flat = torch.cat([q.detach().flatten() for q in state.model.module.parameters()])
    spread = flat.clone()
    dist.all_reduce(spread, op=dist.ReduceOp.MAX)
    mx = (spread - flat).abs().max()
    dist.all_reduce(mx, op=dist.ReduceOp.MAX)
    res = {"world": world, "method": run.method, "precision": run.precision,
           "batch_per_gpu": run.batch, "steps": a.steps, "seconds": sec,
           "img_s": world * run.batch * a.steps / sec, "max_weight_spread": float(mx),
           "loss": state.history[-1]["loss"] if state.history else None,
           "status": state.status,
           "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"}
    if rank == 0:
        print(json.dumps(res), flush=True)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f)
        if a.out:
            from .. import checkpoint

            state.model = state.model.module
            checkpoint.save(a.out, state, run)
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
