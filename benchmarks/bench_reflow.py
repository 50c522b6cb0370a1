"""ReFlow on 2 CPU threads (issue 3): 1-RF -> pairs -> 2-RF, the whole pipeline timed.

For each dataset (N(0, I) -> moons, 8gaussians, checkerboard) and seed, through the library path
the page uses (its defaults): the 1-RF is the project preset flowviz.experiment.FAST_1RF (width
64, batch 1024, 700 steps at lr 2e-2, EMA; fresh data every batch), then
flowviz.methods.reflow.next_round with the default ReflowConfig (10 000 pairs from dopri5 at tol
1e-4; 2-RF initialised from the 1-RF, U-shaped t with a = 4, squared error, batch 1024, 2000
steps at lr 3e-3, EMA 0.999) and train_steps.

Compute = 1-RF training seconds + pair-generation seconds + 2-RF training seconds (wall time
inside train_steps and the ODE solves; model building and evaluation excluded); wall time of
the whole pipeline is printed too, and the process CPU time of the pipeline (all threads): on a
shared machine wall time grows with the other tenants' load, CPU time much less, and a pipeline
of C CPU-seconds needs at most about C seconds on one dedicated core.

Evaluation: 4000 noise points and 4000 fresh data points (seeds disjoint from training); energy
distance (ED) of Euler samples at 1, 2, 4 steps; straightness S (Liu et al. 2022, eq. 7) of
1000 RK4 paths (100 steps). Medians over seeds.
Targets (moons): compute <= 60 s; 2-RF one-step ED <= 0.005; S(1-RF) / S(2-RF) >= 10.

An ablation on moons (seed 0) then retrains only the 2-RF from the same 1-RF and pairs with one
choice changed at a time (uniform t, logit-normal t, pseudo-Huber, init from scratch, no EMA).

    .venv/bin/python benchmarks/bench_reflow.py                 # 3 datasets x 3 seeds + ablation
    .venv/bin/python benchmarks/bench_reflow.py --quick         # moons, 1 seed, no ablation
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning (as in tests/conftest.py): on a busy 2-core
# machine spinning threads fight each other. Must be set before torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import flowviz as fv  # noqa: E402
from flowviz.analysis import path_metrics  # noqa: E402
from flowviz.experiment import FAST_1RF  # noqa: E402
from flowviz.methods.reflow import ReflowConfig, next_round, reflow_state  # noqa: E402

N_EVAL, N_PATHS, EULER = 4000, 1000, (1, 2, 4)
DATASETS = ("moons", "8gaussians", "checkerboard")
TARGET_ED, TARGET_RATIO, BUDGET_S = 0.005, 10.0, 60.0
ABLATIONS = {
    "recipe (U a=4, squared, init 1-RF, EMA)": {},
    "uniform t": {"t_dist": "uniform"},
    "logit-normal t": {"t_dist": "logit_normal"},
    "pseudo-Huber (c = 0.00054 d)": {"loss": "pseudo_huber"},
    "init from scratch": {"init": "scratch"},
    "no EMA": {"optim": {"ema": 0.0}},
}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def cpu_name() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines()
                 if ln.startswith("Model name")), "unknown")


def evaluate(model, target: str, seed: int) -> dict:
    z = fv.data.sample("gaussian", N_EVAL, 10_000 + seed)[0]
    ref = fv.data.sample(target, N_EVAL, 20_000 + seed)[0]
    model = model.eval()
    out = {f"ed{n}": fv.metrics.energy_distance(fv.solve(model, z, "euler", n).x, ref)
           for n in EULER}
    out["S"] = path_metrics(model, z[:N_PATHS], steps=100)["straightness"]
    return out


def pipeline(target: str, seed: int, rcfg: ReflowConfig) -> dict:
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    run1 = dataclasses.replace(FAST_1RF, target=target,
                               optim=dataclasses.replace(FAST_1RF.optim, seed=seed))
    st1 = fv.train_steps(fv.build_fm(run1), run1.optim.steps)
    x0 = fv.data.sample("gaussian", rcfg.n_pairs, 1000 + seed)[0]
    rcfg = dataclasses.replace(rcfg, optim=dataclasses.replace(rcfg.optim, seed=seed))
    st2 = next_round(st1.sampler_model, x0, rcfg)
    fv.train_steps(st2, rcfg.optim.steps)
    wall, cpu = time.perf_counter() - t_wall, time.process_time() - t_cpu
    r = {"target": target, "seed": seed, "t1": st1.seconds, "tpairs": st2.meta["pair_seconds"],
         "t2": st2.seconds, "wall": wall, "cpu": cpu, "pair_nfe": st2.meta["pairs"].nfe,
         "one": evaluate(st1.sampler_model, target, seed),
         "two": evaluate(st2.sampler_model, target, seed), "st1": st1, "st2": st2}
    r["compute"] = r["t1"] + r["tpairs"] + r["t2"]
    r["ratio"] = r["one"]["S"] / max(r["two"]["S"], 1e-12)
    return r


def fmt_row(cells, widths):
    return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"


def table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = [fmt_row(header, widths), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join(lines + [fmt_row(r, widths) for r in rows])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--datasets", nargs="*", default=list(DATASETS))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-ablation", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.datasets, args.no_ablation = 1, ["moons"], True
    torch.set_num_threads(args.threads)
    print(f"# bench_reflow · {cpu_name()} · torch {torch.__version__} · "
          f"{torch.get_num_threads()} threads · OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}")
    print(f"# load before: {uptime()}", flush=True)
    rcfg = ReflowConfig()
    results = {}
    for target in args.datasets:
        for seed in range(args.seeds):
            r = pipeline(target, seed, rcfg)
            results.setdefault(target, []).append(r)
            print(f"{target} seed {seed}: compute {r['compute']:.1f} s (1-RF {r['t1']:.1f}, "
                  f"pairs {r['tpairs']:.1f}, 2-RF {r['t2']:.1f}; wall {r['wall']:.1f}, "
                  f"CPU {r['cpu']:.1f}) · "
                  f"ED@1 1-RF {r['one']['ed1']:.4f} 2-RF {r['two']['ed1']:.4f} · "
                  f"S {r['one']['S']:.4f} -> {r['two']['S']:.5f} ({r['ratio']:.0f}x) · "
                  f"{uptime()}", flush=True)

    med = statistics.median
    rows = []
    for target, rs in results.items():
        def m(f, rs=rs):
            return med(f(r) for r in rs)
        ok = ""
        if target == "moons":
            passed = (m(lambda r: r["compute"]) <= BUDGET_S
                      and m(lambda r: r["two"]["ed1"]) <= TARGET_ED
                      and m(lambda r: r["ratio"]) >= TARGET_RATIO)
            ok = "PASS" if passed else "FAIL"
        rows.append([target, len(rs), f"{m(lambda r: r['compute']):.1f}",
                     f"{m(lambda r: r['t1']):.1f} / {m(lambda r: r['tpairs']):.1f} / "
                     f"{m(lambda r: r['t2']):.1f}", f"{m(lambda r: r['wall']):.1f}",
                     f"{m(lambda r: r['cpu']):.1f}",
                     f"{m(lambda r: r['one']['ed1']):.3f}",
                     f"{m(lambda r: r['two']['ed1']):.4f}", f"{m(lambda r: r['two']['ed2']):.4f}",
                     f"{m(lambda r: r['two']['ed4']):.4f}", f"{m(lambda r: r['one']['S']):.3f}",
                     f"{m(lambda r: r['two']['S']):.5f}", f"{m(lambda r: r['ratio']):.0f}x",
                     f"{m(lambda r: r['pair_nfe']):.0f}", ok])
    print()
    print(table(["data", "seeds", "compute s", "1-RF / pairs / 2-RF s", "wall s", "CPU s",
                 "1-RF ED@1", "2-RF ED@1", "2-RF ED@2", "2-RF ED@4", "S 1-RF", "S 2-RF",
                 "S drop", "pair NFE", f"targets (<= {BUDGET_S:.0f} s, ED@1 <= {TARGET_ED}, "
                 f">= {TARGET_RATIO:.0f}x)"], rows))

    if not args.no_ablation and "moons" in results:
        base = results["moons"][0]
        st1, pairs = base["st1"], base["st2"].meta["pairs"]
        rows = []
        for name, change in ABLATIONS.items():
            optim = dataclasses.replace(rcfg.optim, seed=0, **change.get("optim", {}))
            cfg = dataclasses.replace(rcfg, optim=optim,
                                      **{k: v for k, v in change.items() if k != "optim"})
            st2 = fv.train_steps(reflow_state(st1.sampler_model, pairs, cfg), cfg.optim.steps)
            e = evaluate(st2.sampler_model, "moons", 0)
            rows.append([name, f"{e['ed1']:.4f}", f"{e['ed2']:.4f}", f"{e['ed4']:.4f}",
                         f"{e['S']:.5f}", f"{st2.seconds:.1f}"])
            print(f"ablation {name}: {rows[-1][1:]}", flush=True)
        print()
        print("Ablation, moons seed 0: the same 1-RF and pairs, one 2-RF choice changed")
        print(table(["2-RF variant", "ED@1", "ED@2", "ED@4", "S", "train s"], rows))
    print(f"\n# load after: {uptime()}")


if __name__ == "__main__":
    main()
