"""How FAST_1RF was chosen: a steps-to-quality sweep over FMRun knobs (foundation issue 2, §5).

Steps to quality is deterministic given the seed, so it can be measured anywhere; wall time is
then steps x the per-step cost measured on the target machine (``--per-step-grid THREADS``).
Each configuration trains through flowviz.build_fm / train_steps on the CPU (1 thread per
worker) exactly as bench_fm.py does; evaluation may run on a GPU (``--eval-device cuda``) to make
a large sweep affordable. Writes one JSON line per (config, seed), with the whole ED curve.
Grids: stage1, stage2 (GRIDS), targets (FINALISTS on every toy target), baseline.

    .venv/bin/python benchmarks/tune_fm.py --grid stage2 --workers 2 --out /tmp/sweep.jsonl
    .venv/bin/python benchmarks/tune_fm.py --per-step-grid 2
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import multiprocessing as mp
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_fm import Baseline, Evaluator, per_step_ms, run_baseline, run_fm  # noqa: E402

import flowviz as fv  # noqa: E402
from flowviz.models import MLPConfig  # noqa: E402


def config(batch, hidden, depth, emb, lr, steps, ema, warmup=100, min_lr_frac=0.05,
           grad_clip=1.0, schedule="cosine", target="moons") -> fv.FMRun:
    return fv.FMRun(target=target, batch=batch,
                    model=MLPConfig(hidden=hidden, depth=depth, emb=emb),
                    optim=fv.OptimConfig(steps=steps, lr=lr, ema=ema, warmup=warmup,
                                         min_lr_frac=min_lr_frac, grad_clip=grad_clip,
                                         schedule=schedule))


GRIDS = {
    "stage1": dict(batch=[256, 512, 1024], arch=[(64, 3), (96, 3), (128, 2), (128, 3)],
                   emb=[64], lr=[3e-3, 5e-3, 8e-3, 1.2e-2], steps=[600, 900, 1300, 2000],
                   ema=[0.0, 0.999], warmup=[100]),
    "stage2": dict(batch=[256, 512, 1024], arch=[(64, 2), (64, 3), (96, 2), (96, 3)],
                   emb=[32, 64], lr=[1.2e-2, 2e-2, 3e-2], steps=[700, 1200], ema=[0.999],
                   warmup=[30, 100]),
}
FINALISTS = [
    dict(batch=1024, hidden=64, depth=3, emb=64, lr=2e-2, steps=700, ema=0.999, warmup=30),
    dict(batch=1024, hidden=64, depth=3, emb=64, lr=2e-2, steps=700, ema=0.999, warmup=100),
    dict(batch=1024, hidden=64, depth=3, emb=64, lr=3e-2, steps=700, ema=0.999, warmup=30),
    dict(batch=1024, hidden=96, depth=3, emb=32, lr=3e-2, steps=700, ema=0.999, warmup=30),
    dict(batch=512, hidden=64, depth=3, emb=64, lr=2e-2, steps=1200, ema=0.999, warmup=30),
    # the library defaults (OptimConfig / MLPConfig / FMRun), for reference
    dict(batch=512, hidden=256, depth=3, emb=64, lr=3e-3, steps=3000, ema=0.999, warmup=100),
]
ARCHS = [(48, 3), (64, 2), (64, 3), (96, 2), (96, 3), (128, 2), (128, 3)]


def jobs(grid: str, seeds) -> list:
    if grid == "baseline":
        return [("baseline", None, s) for s in seeds]
    if grid == "targets":  # the finalists and the library default on every toy target
        out = [("fm", c | {"target": t}, s) for c in FINALISTS for t in fv.data.SAMPLERS
               if t != "gaussian" for s in seeds]
        random.Random(0).shuffle(out)
        return out
    g = GRIDS[grid]
    out = []
    for b, (h, d), e, lr, st, ema, w in itertools.product(
            g["batch"], g["arch"], g["emb"], g["lr"], g["steps"], g["ema"], g["warmup"]):
        c = dict(batch=b, hidden=h, depth=d, emb=e, lr=lr, steps=st, ema=ema, warmup=w)
        out += [("fm", c, s) for s in seeds]
    random.Random(0).shuffle(out)  # a partial sweep is a random subsample
    return out


def work(job, eval_device=None, every=50):
    import torch

    torch.set_num_threads(1)
    kind, c, seed = job
    ev = Evaluator(seed, eval_device, (c or {}).get("target", "moons"))
    t0 = time.time()
    if kind == "baseline":
        r = run_baseline(seed, every=100, max_seconds=120, evaluator=ev)
    else:
        r = run_fm(config(**c), seed, every=every, max_seconds=120, evaluator=ev, label="cfg",
                   to_end=True)
    rec = dataclasses.asdict(r) | {"kind": kind, "cfg": c, "wall": time.time() - t0}
    return rec


def per_step_grid(threads: int, n: int = 100) -> None:
    """ms/step of train_steps (no evaluation) for each architecture x batch x emb."""
    import torch

    torch.set_num_threads(threads)
    for (h, d), b, e in itertools.product(ARCHS, [256, 512, 1024], [32, 64]):
        st = fv.build_fm(config(b, h, d, e, 1e-2, 10**6, 0.999))
        ms = per_step_ms(lambda k, st=st: fv.train_steps(st, k), n=n)
        print(json.dumps(dict(hidden=h, depth=d, batch=b, emb=e, ms=round(ms, 3))), flush=True)
    print(json.dumps(dict(baseline=True, ms=round(per_step_ms(Baseline(0).train, n=n), 3))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-step-grid", type=int, default=0, metavar="THREADS",
                    help="only time train_steps per architecture with this many threads")
    ap.add_argument("--grid", default="stage1")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--eval-device", default=None)
    ap.add_argument("--out")
    ap.add_argument("--limit", type=float, default=1e9, help="stop submitting after this many s")
    args = ap.parse_args()
    if args.per_step_grid:
        return per_step_grid(args.per_step_grid)
    todo = jobs(args.grid, range(args.seeds))
    print(f"{len(todo)} jobs", flush=True)
    t0 = time.time()
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.workers) as pool, open(args.out, "a") as f:
        pending = [pool.apply_async(work, (j, args.eval_device)) for j in todo]
        for i, p in enumerate(pending):
            remaining = args.limit - (time.time() - t0)
            if remaining <= 0:
                print("time limit: stopping", flush=True)
                pool.terminate()
                break
            try:
                rec = p.get(timeout=remaining)
            except mp.TimeoutError:
                print("time limit: stopping", flush=True)
                pool.terminate()
                break
            f.write(json.dumps(rec) + "\n")
            f.flush()
            if i % 50 == 0:
                print(f"{i + 1}/{len(todo)} done at {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
