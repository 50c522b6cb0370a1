"""Shortcut models on 2 CPU threads (issue 5): one network for 1 to 128 steps vs plain FM.

For each dataset (N(0, I) -> moons, 8gaussians, checkerboard) and seed, trains the shortcut
preset through the library path the page uses (flowviz.ShortcutRun -> build_shortcut ->
train_steps), then the plain FM model with the same network and data (ShortcutRun.fm_baseline)
for the same training time: its step count is the shortcut's times the measured per-step cost
ratio (an interleaved micro-benchmark on this machine, just before), and both training times are
printed. Only training time counts (TrainState.seconds). Every 250 steps the shortcut's one-step
ED is measured (outside the timed training) to report when it first reaches 0.01.

Evaluation: 4000 noise points and 4000 fresh data points (seeds disjoint from training); energy
distance (ED) of M-step shortcut samples (d = 1/M, M network calls) and of Euler samples of the FM
model at the same NFE. Medians over seeds. Targets (moons): 1-step ED <= 0.01 with <= 60 s of
training; shortcut at 128 steps no worse than FM at 128 steps.

    .venv/bin/python benchmarks/bench_shortcut.py                 # 3 datasets x 3 seeds
    .venv/bin/python benchmarks/bench_shortcut.py --quick         # moons, 1 seed
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
from functools import partial

# idle OpenMP threads sleep instead of spinning (as in tests/conftest.py): on a busy 2-core
# machine spinning threads fight each other; must be set before torch loads OpenMP
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from machine import cpu, load  # noqa: E402  (benchmarks/ is on sys.path)

import flowviz as fv  # noqa: E402
from flowviz.experiment import FAST_SHORTCUT, same_time  # noqa: E402
from flowviz.methods.shortcut import sample  # noqa: E402

N_EVAL, MS = 4000, (1, 2, 4, 8, 16, 32, 64, 128)
DATASETS = ("moons", "8gaussians", "checkerboard")
TARGET_ONE_STEP, BUDGET_S = 0.01, 60.0


def seeded(run, seed: int, target: str | None = None, steps: int | None = None):
    optim = dataclasses.replace(run.optim, seed=seed, **({"steps": steps} if steps else {}))
    return dataclasses.replace(run, optim=optim, **({"target": target} if target else {}))


def eval_sets(target: str, seed: int, device="cpu"):
    x0 = fv.data.sample("gaussian", N_EVAL, 10_000 + seed)[0].to(device)
    ref = fv.data.sample(target, N_EVAL, 20_000 + seed)[0].to(device)
    return x0, ref


def train(state: fv.TrainState, chunk: int = 500, probe=None) -> fv.TrainState:
    """Train to the end in chunks; ``probe(state)`` runs after each chunk (outside the timed
    training, which TrainState.seconds counts)."""
    while not state.done:
        fv.train_steps(state, chunk)
        if probe is not None:
            probe(state)
    if state.status == "nan":
        raise RuntimeError(state.message)
    return state


def one_step_probe(x0, ref, log: list):
    """Records (step, training seconds, 1-step ED) after each chunk."""
    def probe(state):
        x = sample(state.sampler_model.eval(), x0, 1).x
        log.append((state.step, state.seconds, fv.metrics.energy_distance(x, ref)))
        state.model.train()
    return probe


def evaluate(sc_model, fm_model, x0, ref, ms=MS) -> dict:
    """ED per step count M: shortcut (M calls of s(., ., 1/M)) and FM Euler at NFE M."""
    q = fv.analysis.quality_vs_nfe(None, x0, ref, nfes=ms, sample=partial(sample, sc_model.eval()))
    out = {"sc": dict(zip(*q, strict=True))}
    if fm_model is not None:
        out["fm"] = dict(zip(*fv.analysis.quality_vs_nfe(fm_model.eval(), x0, ref, "euler", ms),
                             strict=True))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="moons, 1 seed")
    ap.add_argument("--no-fm", action="store_true", help="skip the plain FM comparison")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.datasets = 1, ["moons"]
    torch.set_num_threads(args.threads)
    run = FAST_SHORTCUT
    print(f"# bench_shortcut · {cpu()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"# load before: {load()}")
    print(f"# FAST_SHORTCUT = {run.to_json()}".replace("\n", " ").replace("  ", ""))
    fm_run, (ms_sc, ms_fm) = same_time(run, n=60, reps=5)
    ratio, fm_steps = ms_sc / ms_fm, fm_run.optim.steps
    print(f"# per step: shortcut {ms_sc:.2f} ms, FM {ms_fm:.2f} ms, ratio {ratio:.2f}; "
          f"FM gets {fm_steps} steps for the shortcut's {run.optim.steps}\n")
    print("| data | seed | train s (SC / FM) | SC@1 <= 0.01 after s (steps) | "
          + " | ".join(f"SC@{m}" for m in MS) + " | FM@1 | FM@4 | FM@128 |")
    print("|---|---|---|---|" + "---|" * (len(MS) + 3))
    summary = {}
    for name in args.datasets:
        rows = []
        for seed in range(args.seeds):
            curve = []
            sets = eval_sets(name, seed)
            sc = train(fv.build_shortcut(seeded(run, seed, name)), 250,
                       one_step_probe(*sets, curve))
            reach = next(((st_, s_) for st_, s_, e in curve if e <= TARGET_ONE_STEP), None)
            fm = None if args.no_fm else train(fv.build_fm(seeded(run.fm_baseline(), seed, name,
                                                                  fm_steps)))
            r = evaluate(sc.sampler_model, fm and fm.sampler_model, *sets)
            r["t_sc"], r["t_fm"] = sc.seconds, fm.seconds if fm else float("nan")
            r["reach"] = reach
            rows.append(r)
            fmq = r.get("fm", {})
            print(f"| {name} | {seed} | {sc.seconds:.1f} / {r['t_fm']:.1f} | "
                  + (f"{reach[1]:.1f} s ({reach[0]}) | " if reach else "never | ")
                  + " | ".join(f"{r['sc'][m]:.4f}" for m in MS) + " | "
                  + " | ".join(f"{fmq[m]:.4f}" if fmq else "—" for m in (1, 4, 128)) + " |",
                  flush=True)
        med = {k: statistics.median(r["sc"][k] for r in rows) for k in MS}
        fmed = ({k: statistics.median(r["fm"][k] for r in rows) for k in MS}
                if not args.no_fm else {})
        t_sc = statistics.median(r["t_sc"] for r in rows)
        t_fm = statistics.median(r["t_fm"] for r in rows)
        reached = [r["reach"][1] for r in rows if r["reach"]]
        t_reach = statistics.median(reached) if len(reached) == len(rows) else None
        summary[name] = (med, fmed, t_sc, t_fm)
        print(f"| **{name}** | median | {t_sc:.1f} / {t_fm:.1f} | "
              + (f"{t_reach:.1f} s | " if t_reach is not None
                 else f"{len(reached)}/{len(rows)} seeds | ")
              + " | ".join(f"**{med[m]:.4f}**" for m in MS) + " | "
              + " | ".join(f"{fmed[m]:.4f}" if fmed else "—" for m in (1, 4, 128)) + " |",
              flush=True)
    if "moons" in summary:
        med, fmed, t_sc, _ = summary["moons"]
        ok1 = med[1] <= TARGET_ONE_STEP and t_sc <= BUDGET_S
        print(f"\ntarget 1 (moons, 1-step ED <= {TARGET_ONE_STEP}, training <= {BUDGET_S:.0f} s):"
              f" median {med[1]:.4f} in {t_sc:.1f} s -> {'MET' if ok1 else 'NOT MET'}")
        if fmed:
            ok2 = med[128] <= fmed[128]
            print(f"target 2 (moons, shortcut@128 <= FM Euler@128, same training time): "
                  f"{med[128]:.4f} vs {fmed[128]:.4f} -> {'MET' if ok2 else 'NOT MET'}")
    print(f"# load after: {load()}")


if __name__ == "__main__":
    main()
