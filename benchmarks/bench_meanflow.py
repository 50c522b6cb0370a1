"""MeanFlow on 2 CPU threads (issue 6): one-step generation from N(0, I), and what a step costs.

For each dataset (N(0, I) -> moons, 8gaussians, checkerboard) and seed, trains the MeanFlow
preset (flowviz.experiment.FAST_MEANFLOW) through the library path the page uses
(MeanFlowRun -> build_meanflow -> train_steps) and stops at the end of its schedule or when the
training time (TrainState.seconds) passes the budget, whichever comes first.

Evaluation: 4000 noise points and 4000 fresh data points (seeds disjoint from training); energy
distance (ED) of 1-, 2- and 4-jump samples x_r = x_t + (r - t) u(x_t, t, r). Stability: no NaN
stop, and no blow-up in the last half of training (every logged loss part and the largest JVP
term stay below 10x their median over that half). Medians over seeds.

Step cost: milliseconds per optimizer step of the MeanFlow objective against flow matching with
the same network (the MeanFlow net with r = t on every row, i.e. no JVP) and against the plain FM
TimeMLP (one time input), timed in interleaved chunks (median of 7).

    .venv/bin/python benchmarks/bench_meanflow.py                 # 3 datasets x 3 seeds
    .venv/bin/python benchmarks/bench_meanflow.py --quick         # moons, 1 seed
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from machine import cpu, load  # noqa: E402  (benchmarks/ is on sys.path)

import flowviz as fv  # noqa: E402
from flowviz.experiment import FAST_MEANFLOW, MeanFlowRun, build_meanflow  # noqa: E402
from flowviz.methods import meanflow as mf  # noqa: E402

N_EVAL, JUMPS = 4000, (1, 2, 4)
DATASETS = ("moons", "8gaussians", "checkerboard")
TARGET_ED, BUDGET_S, TARGET_COST = 0.01, 60.0, 2.5
WATCH = ("mse_fm", "mse_mean", "jvp_max")  # logged parts checked for blow-ups


def seeded(run: MeanFlowRun, seed: int, target: str) -> MeanFlowRun:
    return dataclasses.replace(run, target=target,
                               optim=dataclasses.replace(run.optim, seed=seed))


def train(state: fv.TrainState, budget: float, chunk: int = 25) -> fv.TrainState:
    """Train to the end of the schedule or until ``budget`` seconds of training (checked every
    ``chunk`` steps, so it may overshoot by one chunk, well under a second)."""
    while not state.done and state.seconds < budget:
        fv.train_steps(state, chunk)
    return state


def blow_up(history: list[dict]) -> float:
    """Largest (max / median) over the last half of training, across the WATCH parts."""
    half = history[len(history) // 2:]
    worst = 0.0
    for k in WATCH:
        vals = [h[k] for h in half if math.isfinite(h.get(k, math.nan))]
        if vals:
            worst = max(worst, max(vals) / max(statistics.median(vals), 1e-12))
    return worst


def evaluate(u, target: str, seed: int) -> dict:
    x0 = fv.data.sample("gaussian", N_EVAL, 10_000 + seed)[0]
    ref = fv.data.sample(target, N_EVAL, 20_000 + seed)[0]
    return {k: fv.metrics.energy_distance(mf.sample(u.eval(), x0, k).x, ref) for k in JUMPS}


def step_costs(run: MeanFlowRun, n: int = 40, reps: int = 7) -> dict:
    """ms per step: MeanFlow, FM on the same network (frac_neq = 0: no JVP), plain FM TimeMLP,
    and MeanFlow with r != t on every row (the worst case for the JVP)."""
    long = dataclasses.replace(run.optim, steps=10**9)
    fm_run = fv.FMRun(**{f.name: getattr(run, f.name) for f in dataclasses.fields(fv.FMRun)}
                      | {"model": dataclasses.replace(run.model, n_scalars=1), "optim": long})
    states = {
        "meanflow": build_meanflow(dataclasses.replace(run, optim=long)),
        "fm_same_net": build_meanflow(dataclasses.replace(
            run, optim=long, meanflow=dataclasses.replace(run.meanflow, frac_neq=0.0))),
        "fm_timemlp": fv.build_fm(fm_run),
        "meanflow_all_rows": build_meanflow(dataclasses.replace(
            run, optim=long, meanflow=dataclasses.replace(run.meanflow, frac_neq=1.0))),
    }
    return fv.train.step_ms(states, n, reps)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=float, default=BUDGET_S, help="max training seconds")
    ap.add_argument("--quick", action="store_true", help="moons, 1 seed")
    ap.add_argument("--no-cost", action="store_true", help="skip the step-cost timing")
    ap.add_argument("--steps", type=int, help="override the preset's steps (tuning)")
    ap.add_argument("--hidden", type=int, help="override the preset's width (tuning)")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.datasets = 1, ["moons"]
    torch.set_num_threads(args.threads)
    run = FAST_MEANFLOW
    if args.steps:
        run = dataclasses.replace(run, optim=dataclasses.replace(run.optim, steps=args.steps))
    if args.hidden:
        run = dataclasses.replace(run, model=dataclasses.replace(run.model, hidden=args.hidden))
    print(f"# bench_meanflow · {cpu()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"# load before: {load()}")
    print(f"# run = {run.to_json()}".replace("\n", " ").replace("  ", ""))
    if not args.no_cost:
        c = step_costs(run)
        print(f"# ms per step: MeanFlow {c['meanflow']:.2f}, FM same net {c['fm_same_net']:.2f}"
              f" (ratio {c['meanflow'] / c['fm_same_net']:.2f}), FM TimeMLP "
              f"{c['fm_timemlp']:.2f} (ratio {c['meanflow'] / c['fm_timemlp']:.2f}); MeanFlow "
              f"with r != t on all rows {c['meanflow_all_rows']:.2f} (ratio "
              f"{c['meanflow_all_rows'] / c['fm_same_net']:.2f} to FM same net)")
        print(f"# load after timing: {load()}\n", flush=True)
    print("| data | seed | steps | train s | status (running: stopped by the budget) | "
          "blow-up (max/median, last half) | " + " | ".join(f"ED@{k}" for k in JUMPS) + " |")
    print("|---|---|---|---|---|---|" + "---|" * len(JUMPS))
    summary = {}
    for name in args.datasets:
        rows = []
        for seed in range(args.seeds):
            st = train(build_meanflow(seeded(run, seed, name)), args.budget)
            r = evaluate(st.sampler_model, name, seed)
            r |= {"t": st.seconds, "steps": st.step, "status": st.status,
                  "blow": blow_up(st.history)}
            rows.append(r)
            print(f"| {name} | {seed} | {st.step} | {st.seconds:.1f} | {st.status} | "
                  f"{r['blow']:.1f} | " + " | ".join(f"{r[k]:.4f}" for k in JUMPS) + " |",
                  flush=True)
        med = {k: statistics.median(r[k] for r in rows) for k in JUMPS}
        t = statistics.median(r["t"] for r in rows)
        stable = all(r["status"] != "nan" and r["blow"] < 10 for r in rows)
        summary[name] = (med, t, stable, rows)
        print(f"| **{name}** | median | | {t:.1f} | {'stable' if stable else 'UNSTABLE'} | | "
              + " | ".join(f"**{med[k]:.4f}**" for k in JUMPS) + " |", flush=True)
    if "moons" in summary:
        med, t, stable, rows = summary["moons"]
        ok = med[1] <= TARGET_ED and stable
        print(f"\ntarget (moons, 1-step ED <= {TARGET_ED}, <= {args.budget:.0f} s, stable over "
              f"{len(rows)} seeds): median {med[1]:.4f}, worst {max(r[1] for r in rows):.4f}, "
              f"{t:.1f} s, {sum(r['status'] == 'done' for r in rows)} of {len(rows)} runs "
              f"finished their schedule -> {'MET' if ok else 'NOT MET'}")
    if not args.no_cost:
        ratio = c["meanflow"] / c["fm_same_net"]
        print(f"target (MeanFlow step <= {TARGET_COST}x FM step, same network): {ratio:.2f}x -> "
              f"{'MET' if ratio <= TARGET_COST else 'NOT MET'}")
    print(f"# load after: {load()}")


if __name__ == "__main__":
    main()
