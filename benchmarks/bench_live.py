"""Live training on 2 CPU threads, through the page's code path (build_* -> train_steps).

``steps``: milliseconds per optimizer step of MeanFlow's page default (FAST_MEANFLOW on the
sidebar's default data: moons, 1000 points, h = 0.05) with its JVP target by the TimeMLP's
hand-written forward mode (TimeMLP.jvp, the default) and by torch.func.jvp (before it), against
flow matching with the same network (r = t on every row: no JVP) and the plain FM TimeMLP of the
same width and batch. Best of ``reps`` interleaved chunks (load changes hit all alike); the
median is printed too. The machine is shared, so `uptime` is printed before and after.

``pages``: each lesson page's live run at its defaults (1-RF, the ReFlow pipeline 1-RF ->
pairs -> 2-RF, Shortcut, MeanFlow, InstaFlow), built and advanced as views.training does (the
page's chunk per tick; pair and pipeline phases by their own ``advance``): wall seconds and this
process's CPU seconds of the whole live run (building included, evaluation not), and its
quality against the issue's target (energy distance to 1000 fresh data points from 1000 fresh
noise points). ``--recipe NAME`` runs a candidate faster recipe instead of the default.

    .venv/bin/python benchmarks/bench_live.py steps
    .venv/bin/python benchmarks/bench_live.py pages [--seeds 3] [--only meanflow]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from machine import cpu, load  # noqa: E402  (benchmarks/ is on sys.path)

import flowviz as fv  # noqa: E402
from flowviz import experiment as ex  # noqa: E402
from flowviz.experiment import FAST_MEANFLOW, build_meanflow  # noqa: E402
from flowviz.methods import meanflow as mf  # noqa: E402
from flowviz.methods import shortcut as sc  # noqa: E402
from flowviz.methods.instaflow import (  # noqa: E402
    InstaFlowPipeline,
    InstaFlowRun,
    per_condition_quality,  # noqa: E402
)
from flowviz.methods.reflow import ReflowConfig  # noqa: E402

# the sidebar's defaults (views.state.settings): moons, 1000 points, h = 0.05, seed 0
PAGE_DATA = {"source": "gaussian", "target": "moons", "n_data": 1000, "data_seed": 0, "h": 0.05}


def long(run):
    """The run with a schedule that does not end while it is timed."""
    return dataclasses.replace(run, optim=dataclasses.replace(run.optim, steps=10**9))


def func_target(u, xt, t, r, v, tangent="conditional"):
    """MeanFlow's target through torch.func.jvp (a plain function is not a MeanVelocity)."""
    return mf.meanflow_target(lambda x, t_, r_: u(x, t_, r_), xt, t, r, v, tangent)


def time_steps(states: dict, n: int, reps: int) -> dict:
    """name -> (best wall, median wall, best CPU) ms per step over ``reps`` interleaved chunks
    of ``n`` steps. CPU: this process's CPU time (all its threads), which other processes on a
    shared machine inflate far less than wall time."""
    for s in states.values():
        fv.train_steps(s, 3)
    wall, cpu_ = {k: [] for k in states}, {k: [] for k in states}
    for _ in range(reps):
        for k, s in states.items():
            t, c = time.perf_counter(), time.process_time()
            fv.train_steps(s, n)
            wall[k].append(1e3 * (time.perf_counter() - t) / n)
            cpu_[k].append(1e3 * (time.process_time() - c) / n)
    return {k: (min(wall[k]), statistics.median(wall[k]), min(cpu_[k])) for k in states}


def steps(args) -> None:
    run = long(dataclasses.replace(FAST_MEANFLOW, **PAGE_DATA))
    fm = fv.FMRun(**{f.name: getattr(run, f.name) for f in dataclasses.fields(fv.FMRun)}
                  | {"model": dataclasses.replace(run.model, n_scalars=1)})
    states = {"MeanFlow, hand-written JVP": build_meanflow(run),
              "MeanFlow, torch.func.jvp": build_meanflow(run),
              "FM, same net (r = t)": build_meanflow(dataclasses.replace(
                  run, meanflow=dataclasses.replace(run.meanflow, frac_neq=0.0))),
              "FM TimeMLP": fv.build_fm(fm)}
    states["MeanFlow, torch.func.jvp"].objective.target = func_target
    print(f"# run = {run.to_json()}".replace("\n", " ").replace("  ", ""))
    ms = time_steps(states, args.n, args.reps)
    fm_ms, fm_cpu = ms["FM TimeMLP"][0], ms["FM TimeMLP"][2]
    print(f"| step ({args.n} steps x {args.reps}, {torch.get_num_threads()} threads) | best ms | "
          "median ms | best / FM TimeMLP | best CPU ms | CPU / FM TimeMLP |\n"
          "|---|---|---|---|---|---|")
    for k, (best, med, c) in ms.items():
        print(f"| {k} | {best:.2f} | {med:.2f} | {best / fm_ms:.2f} | {c:.2f} | "
              f"{c / fm_cpu:.2f} |")


# each page's default live run (views/*.py at the time of writing), its chunk per tick, how
# its quality is measured, the targets: (ED at most, live seconds at most)
PAGES = {
    "1-RF": (lambda: fv.FMRun(**PAGE_DATA, model=fv.models.MLPConfig(hidden=128)), 100,
             "100-step Euler", (0.004, 3)),
    "ReFlow pipeline": (lambda: ex.ReflowRun(
        base=dataclasses.replace(ex.FAST_1RF, **PAGE_DATA),
        reflow=ReflowConfig(chunk=1000, n_real=1000)), 100, "2-RF one step", (0.005, 20)),
    "Shortcut": (lambda: dataclasses.replace(ex.FAST_SHORTCUT, **PAGE_DATA), 100, "one step",
                 (0.01, 20)),
    "MeanFlow": (lambda: dataclasses.replace(FAST_MEANFLOW, **PAGE_DATA), 50, "one jump",
                 (0.01, 20)),
    "InstaFlow": (lambda: InstaFlowRun(n_data=2000, h=0.05), 1,
                  "student from 2-RF, per condition", (0.01, 30)),
}


def recipe(page: str, hidden: int | None = None, batch: int | None = None,
           lr: float | None = None, steps: int | None = None, warmup: int | None = None):
    """A page's default run with a faster recipe's changes (a smaller net, a larger batch, a
    higher learning rate, fewer steps)."""
    make, chunk, what, target = PAGES[page]

    def changed():
        run = make()
        o = dataclasses.replace(run.optim, **{k: v for k, v in (
            ("lr", lr), ("steps", steps), ("warmup", warmup)) if v is not None})
        m = run.model if hidden is None else dataclasses.replace(run.model, hidden=hidden)
        return dataclasses.replace(run, optim=o, model=m, batch=batch or run.batch)
    return changed, chunk, what, target


def fast_1rf(steps: int):
    """FAST_1RF (width 64, batch 1024, lr 2e-2, warm-up 30) on the page's data."""
    return lambda: (lambda: dataclasses.replace(
        ex.FAST_1RF, **PAGE_DATA, optim=dataclasses.replace(ex.FAST_1RF.optim, steps=steps)),
        100, "100-step Euler", PAGES["1-RF"][3])


RECIPES = {
    "1-RF FAST_1RF 700": fast_1rf(700),
    "1-RF FAST_1RF 400": fast_1rf(400),
    "MeanFlow w128 lr5e-3 2000": lambda: recipe("MeanFlow", 128, lr=5e-3, steps=2000),
    "MeanFlow w128 b1024 lr1e-2 1500": lambda: recipe("MeanFlow", 128, 1024, 1e-2, 1500, 30),
    "MeanFlow w64 b1024 lr1e-2 2000": lambda: recipe("MeanFlow", 64, 1024, 1e-2, 2000, 30),
    "Shortcut w64 b1024 lr1e-2 2000": lambda: recipe("Shortcut", 64, 1024, 1e-2, 2000, 30),
    "Shortcut w128 lr8e-3 1500": lambda: recipe("Shortcut", 128, lr=8e-3, steps=1500),
    "MeanFlow w256 lr5e-3 1500": lambda: recipe("MeanFlow", lr=5e-3, steps=1500),
    "MeanFlow w256 lr3e-3 1500": lambda: recipe("MeanFlow", steps=1500),
}


def live_run(run, chunk: int):
    """Build and advance a run's phases in order as the page does; returns (finished phases,
    wall s, CPU s)."""
    t, c = time.perf_counter(), time.process_time()
    if isinstance(run, InstaFlowRun):
        pipe = InstaFlowPipeline(run, torch.device("cpu"))
        while not pipe.done:
            pipe.advance()
        done = {"pipe": pipe}
    else:
        done = {}
        for name, build in ex.phases(run).items():
            s = build(done)
            while not s.done:
                fv.train_steps(s, chunk) if isinstance(s, fv.TrainState) else s.advance(1)
            done[name] = s
    return done, time.perf_counter() - t, time.process_time() - c


def quality(run, done: dict, seed: int) -> float:
    if isinstance(run, InstaFlowRun):
        q = per_condition_quality(done["pipe"], "student from 2-RF", 1, 1000, seed)
        return sum(q) / len(q)
    base = run.base if isinstance(run, ex.ReflowRun) else run
    g = torch.Generator().manual_seed(20_000 + seed)
    x0 = torch.randn(1000, 2, generator=g)
    ref = ex.data_samplers(base)[1](1000, g)[0]
    last = list(done.values())[-1].sampler_model.eval()
    with torch.no_grad():
        if isinstance(run, ex.MeanFlowRun):
            x = mf.sample(last, x0, 1).x
        elif isinstance(run, ex.ShortcutRun):
            x = sc.sample(last, x0, 1).x
        else:  # 1-RF at 100 Euler steps, the 2-RF at one
            x = fv.solve(last, x0, "euler", 1 if isinstance(run, ex.ReflowRun) else 100).x
    return float(fv.metrics.energy_distance(x, ref))


def seeded(run, seed: int):
    if isinstance(run, InstaFlowRun):
        return dataclasses.replace(run, seed=seed)
    if isinstance(run, ex.ReflowRun):
        return dataclasses.replace(run, base=seeded(run.base, seed))
    return dataclasses.replace(run, optim=dataclasses.replace(run.optim, seed=seed))


def pages(args) -> None:
    print("| page | seed | quality | ED | target ED | live wall s | CPU s | target s | "
          "phases |\n|---|---|---|---|---|---|---|---|---|")
    todo = {k: RECIPES[k]() for k in args.recipe} if args.recipe else PAGES
    for name, (make, chunk, what, (ed_max, s_max)) in todo.items():
        if args.only and name not in args.only:
            continue
        for seed in range(args.seeds):
            run = seeded(make(), seed)
            done, wall, cpu_s = live_run(run, chunk)
            ed = quality(run, done, seed)
            ph = done["pipe"].phase_seconds if "pipe" in done else \
                {k: getattr(v, "seconds", float("nan")) for k, v in done.items()}
            print(f"| {name} | {seed} | {what} | {ed:.4f} | {ed_max} | {wall:.1f} | "
                  f"{cpu_s:.1f} | {s_max} | "
                  + ", ".join(f"{k} {v:.1f}" for k, v in ph.items()) + " |", flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["steps", "pages"])
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--only", nargs="+", help="pages to run (names of PAGES)")
    ap.add_argument("--recipe", nargs="+", choices=list(RECIPES), help="faster recipes instead")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=30, help="steps per timed chunk")
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])  # its imports, paid as the server does
    print(f"# bench_live {args.what} · {cpu()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads")
    print(f"# load before: {load()}")
    {"steps": steps, "pages": pages}[args.what](args)
    print(f"# load after: {load()}")


if __name__ == "__main__":
    main()
