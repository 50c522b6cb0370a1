"""The fast-generation scoreboard: the article's whole argument on one chart (§6.3.1; issue 6).

Every method on one dataset, from the same noise against the same data: 1-RF, a minibatch-OT
flow, 2-RF, 2-RF + one-step distillation (rectified flow §2.3 / InstaFlow §4.3), Shortcut and
MeanFlow, sampled at NFE 1 to 128 with each method's own sampler; and next to each the compute
it needed: its own training, the teacher it was made from, the pairs it was trained on, and
what one training step costs against plain flow matching with the same network (the JVP of
MeanFlow, the self-consistency targets of Shortcut). The runs are the ones the pages train (the
presets' configs), so at the pages' default settings they load instead of training.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import torch

from . import presets
from .analysis import NFES, quality_vs_nfe
from .experiment import (
    ReflowRun,
    build_fm,
    build_meanflow,
    build_shortcut,
    data_samplers,
    phase_ids,
    phases,
)
from .methods import meanflow, shortcut
from .methods.distill import distill_objective, one_step
from .methods.reflow import PairGeneration
from .runner import PhaseRunner
from .solvers import Solution
from .train import OptimConfig, init_state, step_ms

# The runs come from the pages' presets (moons, the sidebar's defaults); other data is swapped in.
TEMPLATES = {"reflow": "reflow-moons", "ot": "straight_pairs-moons-ot",
             "shortcut": "shortcut-moons", "meanflow": "meanflow-moons"}
NAMES = {"rf1": "1-RF", "ot": "minibatch OT", "rf2": "2-RF", "student": "2-RF + distill",
         "shortcut": "Shortcut", "meanflow": "MeanFlow"}


@dataclass(frozen=True)
class DistillRun:
    """The one-step student of the 2-RF (no conditions): its ODE endpoints, then distillation
    initialised from the 2-RF's weights (InstaFlow's recipe, §4.3)."""

    n_pairs: int = 10_000
    solver: str = "dopri5"
    tol: float = 1e-4
    chunk: int = 2000
    batch: int = 1024
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(steps=1000, lr=3e-3,
                                                                   warmup=30))


def with_data(run, source: str, target: str, n_data: int, h: float, seed: int):
    """A template run on other data (the sidebar's settings), seeded as the pages seed it."""
    if isinstance(run, ReflowRun):
        return dataclasses.replace(
            run, base=with_data(run.base, source, target, n_data, h, seed),
            reflow=dataclasses.replace(run.reflow, optim=dataclasses.replace(
                run.reflow.optim, seed=seed)))
    return dataclasses.replace(run, source=source, target=target, n_data=n_data, data_seed=seed,
                               h=h, optim=dataclasses.replace(run.optim, seed=seed))


def runs_for(source: str = "gaussian", target: str = "moons", n_data: int = 1000,
             h: float = 0.05, seed: int = 0) -> dict:
    """{"reflow", "ot", "shortcut", "meanflow"} -> run config on this data."""
    specs = presets.specs()
    return {k: with_data(specs[name].run, source, target, n_data, h, seed)
            for k, name in TEMPLATES.items()}


def student_phases(distill: DistillRun, seed: int, device) -> dict:
    """Builds of the student's two phases, from the finished "rf2" phase."""

    def endpoints(jobs):
        g = torch.Generator().manual_seed(seed + 500)
        x0 = torch.randn(distill.n_pairs, 2, generator=g).to(device)
        return PairGeneration(jobs["rf2"].sampler_model.eval(), x0, distill.solver,
                              tol=distill.tol, chunk=distill.chunk)

    def student(jobs):
        net = copy.deepcopy(jobs["rf2"].sampler_model).requires_grad_(True).train()
        opt = dataclasses.replace(distill.optim, seed=seed)
        return init_state(net, distill_objective(jobs["endpoints"].result(), distill.batch), opt)

    return {"endpoints": endpoints, "student": student}


def scoreboard(runs: dict, distill: DistillRun = DistillRun(), seed: int = 0, device="cpu",
               uploaded=None, use_presets: bool = True) -> PhaseRunner:
    """Every method's phases as one PhaseRunner; phases a preset holds are loaded, not run."""
    ph = phases(runs["reflow"], device, uploaded)
    builds = {"rf1": ph["rf1"], "pairs2": ph["pairs2"], "rf2": ph["rf2"],
              **student_phases(distill, seed, device)}
    for k in ("ot", "shortcut", "meanflow"):
        builds[k] = phases(runs[k], device, uploaded)["run"]
    runner = PhaseRunner(builds)
    if use_presets and presets.enabled():
        for k, run in runs.items():
            ids = phase_ids(run)
            hit = presets.find(ids["rf1" if k == "reflow" else "run"])
            if hit is not None and hit[0].run == run:
                done = presets.load(hit[0], device)
                runner.jobs.update(done if k == "reflow" else {k: done["run"]})
    return runner


# --- measuring -----------------------------------------------------------------------------------

def sampler(name: str, model):
    """The few-step sampler ``(x0, nfe) -> Solution`` of each method (None: Euler on the flow);
    the student exists at NFE 1 only."""
    if name == "shortcut":
        return lambda x0, n: shortcut.sample(model, x0, n)
    if name == "meanflow":
        return meanflow.sampler(model)
    if name == "student":
        return lambda x0, n: Solution(one_step(model, x0), 1)
    return None


def eval_points(runs: dict, n: int = 2000, seed: int = 12345, uploaded=None):
    """(x0, ref): n fresh source points and n fresh samples of the distribution every run was
    trained on (the fixed data set widened by h, or the sampler), from new seeds."""
    sample_x0, sample_x1 = data_samplers(runs["ot"], uploaded)
    g = torch.Generator().manual_seed(seed)
    return sample_x0(n, g)[0], sample_x1(n, g)[0]


def curves(runner: PhaseRunner, x0: torch.Tensor, ref: torch.Tensor, nfes=NFES) -> dict:
    """name -> (NFE list, energy distance list) for every finished method."""
    out = {}
    for k in NAMES:
        job = runner.jobs.get(k)
        if job is None or not job.done or getattr(job, "status", "") == "nan":
            continue
        model = job.sampler_model.eval()
        with torch.no_grad():
            out[k] = quality_vs_nfe(model, x0, ref, nfes=(1,) if k == "student" else nfes,
                                    sample=sampler(k, model))
    return out


def compute(runner: PhaseRunner) -> dict:
    """name -> seconds: "training" (its own), "teacher" (the flows it was made from), "pairs"
    (ODE solves for its training pairs), "total". Times are what each phase took where it ran
    (a preset: on the machine that trained it, recorded in its checkpoint)."""
    s = {k: j.seconds for k, j in runner.jobs.items()}
    rows = {"rf1": (s.get("rf1", 0), 0, 0), "ot": (s.get("ot", 0), 0, 0),
            "rf2": (s.get("rf2", 0), s.get("rf1", 0), s.get("pairs2", 0)),
            "student": (s.get("student", 0), s.get("rf1", 0) + s.get("rf2", 0),
                        s.get("pairs2", 0) + s.get("endpoints", 0)),
            "shortcut": (s.get("shortcut", 0), 0, 0), "meanflow": (s.get("meanflow", 0), 0, 0)}
    return {k: {"training": a, "teacher": b, "pairs": c, "total": a + b + c}
            for k, (a, b, c) in rows.items() if k in runner.jobs}


def step_overheads(runs: dict, device="cpu", n: int = 20, reps: int = 5) -> dict:
    """A Shortcut and a MeanFlow step against flow matching with the same network and batch:
    MeanFlow with r = t on every row (no JVP), Shortcut's FM baseline at its width."""
    long = OptimConfig(steps=10**9)
    mf, sc = (dataclasses.replace(runs[k], optim=long) for k in ("meanflow", "shortcut"))
    states = {"meanflow": build_meanflow(mf, device),
              "meanflow_fm": build_meanflow(dataclasses.replace(
                  mf, meanflow=dataclasses.replace(mf.meanflow, frac_neq=0.0)), device),
              "shortcut": build_shortcut(sc, device),
              "shortcut_fm": build_fm(sc.fm_baseline(), device)}
    ms = step_ms(states, n, reps)
    return {"meanflow": ms["meanflow"] / ms["meanflow_fm"],
            "shortcut": ms["shortcut"] / ms["shortcut_fm"], "ms": ms}


def progress(runner: PhaseRunner) -> tuple[float, str]:
    """(fraction of the phases done, a line of text) for a training started on the page: the
    seconds are this session's own training, not the presets' recorded times."""
    names = list(runner.builds)
    todo = [p for p in names if p not in runner.jobs or not runner.jobs[p].done]
    spent = sum(runner.seconds_by_phase.values())
    if not todo:
        return 1.0, f"all phases done · {spent:.1f} s of training in this session"
    names_done = len(names) - len(todo)
    i = names.index(todo[0])
    part = runner.progress()[0] * len(names) - i  # how far the current phase is
    return (names_done + part) / len(names), (
        f"training {todo[0]} ({len(todo)} phase{'s' * (len(todo) > 1)} left) · "
        f"{spent:.1f} s so far in this session")


def budgets(runs: dict, distill: DistillRun = DistillRun()) -> dict:
    """name -> the training each method had: its own steps × batch and network width, and the
    examples it saw in all, counting the flows it was made from (the presets' budgets differ
    by method: read the scoreboard against them)."""
    rf = runs["reflow"]
    own = {"rf1": (rf.base.optim.steps, rf.base.batch, rf.base.model.hidden),
           "rf2": (rf.reflow.optim.steps, rf.reflow.batch, rf.base.model.hidden),
           "student": (distill.optim.steps, distill.batch, rf.base.model.hidden),
           **{k: (runs[k].optim.steps, runs[k].batch, runs[k].model.hidden)
              for k in ("ot", "shortcut", "meanflow")}}
    seen = {k: s * b for k, (s, b, _) in own.items()}
    made_from = {"rf2": ("rf1",), "student": ("rf1", "rf2")}
    return {k: {"steps": s, "batch": b, "width": w,
                "examples": seen[k] + sum(seen[p] for p in made_from.get(k, ()))}
            for k, (s, b, w) in own.items()}
