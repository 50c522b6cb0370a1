"""InstaFlow on 2 CPU threads (issue 4): the whole pipeline on the eight-Gaussians-by-name target.

For each teacher (the exact conditional VP PF-ODE; a trained conditional 1-RF) and seed, runs
flowviz.methods.instaflow.InstaFlowPipeline with the page's defaults (InstaFlowRun()): teacher
(trained only for "rf"), 8000 triples from 25 Euler steps, a conditional 2-RF (1500 steps),
its dopri5 endpoints, then two one-step students with the same budget (1000 steps each): one
distilled from the 2-RF's endpoints, one straight from the teacher's triples.

Reported: wall time of every phase and of the whole pipeline (target <= 90 s), and the mean
over the 8 conditions of the energy distance between 1000 one-step samples per condition and
1000 fresh data points of that condition (target <= 0.01 for the student from the 2-RF), for
both students, the 2-RF at one Euler step and the teacher at its 25 steps. Medians of 3 seeds.
With --coverage: the rare-condition experiment of §4.4 (condition N at 0.2 % and unseen, each
fix), exact teacher, one seed.

    .venv/bin/python benchmarks/bench_instaflow.py            # 2 teachers x 3 seeds
    .venv/bin/python benchmarks/bench_instaflow.py --coverage
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from machine import cpu, load  # noqa: E402  (benchmarks/ is on sys.path)

from flowviz.methods.instaflow import (  # noqa: E402
    InstaFlowPipeline,
    InstaFlowRun,
    per_condition_quality,
)

STAGES = ("teacher", "2-RF", "student from 2-RF", "student from teacher")
TARGET_ED, BUDGET_S = 0.01, 90.0


def one(run: InstaFlowRun) -> dict:
    pipe = InstaFlowPipeline(run, torch.device("cpu")).run_all()
    assert pipe.status == "done", pipe.message
    steps = {"teacher": run.teacher_steps}
    q = {s: per_condition_quality(pipe, s, steps.get(s, 1), 1000, run.seed) for s in STAGES}
    return {"seconds": pipe.seconds, "phases": pipe.phase_seconds, "q": q,
            "n_rare": int((pipe.cond == run.rare).sum()) if run.rare >= 0 else None}


def mean(v):
    return sum(v) / len(v)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--coverage", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"# {cpu()}, torch {torch.__version__}, {a.threads} threads · {load()}\n")
    if a.coverage:
        return coverage()
    print("| teacher | seed | pipeline s | phases (s) | teacher 25 steps | 2-RF 1 step | "
          "student from 2-RF | student from teacher |")
    print("|---|---|---|---|---|---|---|---|")
    for teacher in ("exact_vp", "rf"):
        res = []
        for seed in range(a.seeds):
            r = one(InstaFlowRun(teacher=teacher, seed=seed))
            res.append(r)
            ph = ", ".join(f"{k} {v:.1f}" for k, v in r["phases"].items())
            print(f"| {teacher} | {seed} | {r['seconds']:.1f} | {ph} | "
                  + " | ".join(f"{mean(r['q'][s]):.4f}" for s in STAGES) + " |", flush=True)
        med = {s: statistics.median(mean(r["q"][s]) for r in res) for s in STAGES}
        t = statistics.median(r["seconds"] for r in res)
        print(f"| **{teacher} median** | | **{t:.1f}** | | "
              + " | ".join(f"**{med[s]:.4f}**" for s in STAGES) + " |")
        ok = med["student from 2-RF"] <= TARGET_ED and t <= BUDGET_S
        print(f"\ntarget (student from 2-RF <= {TARGET_ED}, pipeline <= {BUDGET_S:.0f} s): "
              f"{'met' if ok else 'MISSED'} · {load()}\n")


def coverage() -> None:
    print("| rare share | fix | rare triples | rare cond.: student from 2-RF | "
          "others (mean) | rare: 2-RF 1 step | pipeline s |")
    print("|---|---|---|---|---|---|---|")
    for share in (0.002, 0.0):
        for fix in ("none", "reweight", "resample"):
            run = dataclasses.replace(InstaFlowRun(), rare=2, rare_share=share, fix=fix)
            r = one(run)
            s = r["q"]["student from 2-RF"]
            others = mean([v for i, v in enumerate(s) if i != 2])
            print(f"| {100 * share:g} % | {fix} | {r['n_rare']} | {s[2]:.4f} | {others:.4f} | "
                  f"{r['q']['2-RF'][2]:.4f} | {r['seconds']:.1f} |", flush=True)
    print(f"\n{load()}")


if __name__ == "__main__":
    main()
