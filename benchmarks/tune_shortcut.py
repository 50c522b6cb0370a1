"""How FAST_SHORTCUT was chosen: a steps-to-quality sweep over ShortcutRun knobs (issue 5).

Quality after a given number of steps does not depend on the machine, so the sweep can train
anywhere (many 1-thread CPU workers; ``--eval-device cuda`` to measure faster); wall time on the
target machine is then steps x the per-step cost that bench_shortcut.py measures there. Each job
trains through flowviz.build_shortcut / build_fm and train_steps and writes one JSON line: the
config, the seed, and the energy distance (4000 vs 4000, as in bench_shortcut.py) at M = 1, 2, 4,
8, 128 steps.

    .venv/bin/python benchmarks/tune_shortcut.py --grid '[{"steps": 3000}]' --out /tmp/s.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_shortcut import eval_sets, evaluate, train  # noqa: E402

import flowviz as fv  # noqa: E402
from flowviz.methods.shortcut import TEMPLATES, ShortcutConfig  # noqa: E402
from flowviz.models import MLPConfig  # noqa: E402

DEFAULTS = dict(kind="sc", data="moons", hidden=256, depth=3, emb=64, emb_scale=1000.0,
                batch=512, lr=3e-3, steps=3000, warmup=100, ema=0.999, min_lr_frac=0.05,
                sc_frac=0.25, sc_target="ema", m_max=128, d_grid="pow2", template="halves")
EVAL_MS = (1, 2, 4, 8, 128)


def build_run(c: dict, seed: int) -> fv.ShortcutRun:
    c = DEFAULTS | c
    return fv.ShortcutRun(
        target=c["data"], batch=c["batch"],
        model=MLPConfig(hidden=c["hidden"], depth=c["depth"], emb=c["emb"],
                        emb_scale=c["emb_scale"], n_scalars=2),
        optim=fv.OptimConfig(steps=c["steps"], lr=c["lr"], warmup=c["warmup"], ema=c["ema"],
                             min_lr_frac=c["min_lr_frac"], seed=seed),
        shortcut=ShortcutConfig(sc_frac=c["sc_frac"], target=c["sc_target"], m_max=c["m_max"],
                                d_grid=c["d_grid"], template=TEMPLATES[c["template"]]))


def job(arg):
    c, seed, device, eval_device = arg
    import torch

    torch.set_num_threads(1)
    run = build_run(c, seed)
    t0 = time.time()
    fm = (DEFAULTS | c)["kind"] == "fm"
    st = train(fv.build_fm(run.fm_baseline(), device) if fm else fv.build_shortcut(run, device))
    wall = time.time() - t0
    model = st.sampler_model.to(eval_device).eval()
    sets = eval_sets(run.target, seed, eval_device)
    if fm:
        r = {"fm": dict(zip(*fv.analysis.quality_vs_nfe(model, *sets, "euler", EVAL_MS),
                            strict=True))}
    else:
        r = evaluate(model, None, *sets, EVAL_MS)
    last = st.history[-1] if st.history else {}
    return {"cfg": c, "seed": seed, "wall": round(wall, 1), **r,
            "ms_step": round(1e3 * st.seconds / max(1, st.step), 2),
            "last": {k: round(float(v), 5) for k, v in last.items()}}


def expand(grid: dict) -> list[dict]:
    keys = list(grid)
    return [dict(zip(keys, v, strict=True)) for v in itertools.product(*grid.values())]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--grid", required=True,
                    help="JSON: a list of config dicts, or a dict of lists (product)")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="where to train")
    ap.add_argument("--eval-device", default="cpu", help="where to sample and measure")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    g = json.loads(args.grid)
    cfgs = expand(g) if isinstance(g, dict) else g
    jobs = [(c, s, args.device, args.eval_device) for c in cfgs for s in range(args.seeds)]
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.workers) as pool, open(args.out, "a") as f:
        for r in pool.imap_unordered(job, jobs):
            line = json.dumps(r)
            f.write(line + "\n")
            f.flush()
            print(line, flush=True)


if __name__ == "__main__":
    main()
