"""The scoreboard library (flowviz.scoreboard, flowviz.runner): phases in order with preloaded
ones skipped, honest compute sums, each method's own sampler, on tiny runs."""

import dataclasses

import pytest
import torch

from flowviz import scoreboard as sb
from flowviz.experiment import ReflowRun
from flowviz.runner import PhaseRunner
from flowviz.train import OptimConfig


def tiny_runs(seed: int = 0) -> dict:
    runs = sb.runs_for("gaussian", "two_mode", 200, 0.05, seed)
    opt = lambda r: dataclasses.replace(r.optim, steps=20, warmup=2)  # noqa: E731
    small = lambda m: dataclasses.replace(m, hidden=16, depth=1)  # noqa: E731
    out = {k: dataclasses.replace(r, batch=64, optim=opt(r), model=small(r.model))
           for k, r in runs.items() if k != "reflow"}
    rf = runs["reflow"]
    out["reflow"] = dataclasses.replace(
        rf, base=dataclasses.replace(rf.base, batch=64, optim=opt(rf.base),
                                     model=small(rf.base.model)),
        reflow=dataclasses.replace(rf.reflow, n_pairs=256, solver="euler", steps=4, chunk=256,
                                   batch=64, optim=dataclasses.replace(rf.reflow.optim, steps=20,
                                                                       warmup=2)))
    return out


TINY_DISTILL = sb.DistillRun(n_pairs=256, solver="rk4", chunk=256, batch=64,
                             optim=OptimConfig(steps=20, warmup=2))


def test_runs_follow_the_sidebar_data():
    runs = sb.runs_for("gaussian", "checkerboard", 500, 0.1, 7)
    assert isinstance(runs["reflow"], ReflowRun)
    for r in (runs["reflow"].base, runs["ot"], runs["shortcut"], runs["meanflow"]):
        assert (r.target, r.n_data, r.h, r.data_seed, r.optim.seed) == ("checkerboard", 500,
                                                                        0.1, 7, 7)
    assert runs["ot"].coupling == "ot"


def test_runner_skips_preloaded_phases_and_keeps_order():
    calls = []

    class Job:
        def __init__(self, name):
            self.name, self.n = name, 0

        @property
        def done(self):
            return self.n >= 2

        def advance(self):
            calls.append(self.name)
            self.n += 1

    pre = Job("b")
    pre.n = 2
    r = PhaseRunner({k: (lambda jobs, k=k: Job(k)) for k in "abc"}, jobs={"b": pre})
    assert r.phase == "a"
    r.run_all()
    assert calls == ["a", "a", "c", "c"] and r.status == "done" and r.progress()[0] == 1.0
    assert set(r.seconds_by_phase) == {"a", "c"}


@pytest.fixture(scope="module")
def board():
    return sb.scoreboard(tiny_runs(), TINY_DISTILL, use_presets=False).run_all()


def test_tiny_scoreboard_trains_every_method(board):
    assert board.status == "done"
    assert list(board.jobs) == ["rf1", "pairs2", "rf2", "endpoints", "student", "ot",
                                "shortcut", "meanflow"]
    x0, ref = sb.eval_points(tiny_runs(), 200)
    curves = sb.curves(board, x0, ref, nfes=(1, 2, 4))
    assert list(curves) == list(sb.NAMES)
    assert curves["student"][0] == [1]
    for k in ("rf1", "ot", "rf2", "shortcut", "meanflow"):
        assert curves[k][0] == [1, 2, 4]


def test_compute_adds_teachers_and_pairs(board):
    s = {k: j.seconds for k, j in board.jobs.items()}
    c = sb.compute(board)
    assert c["rf1"]["total"] == pytest.approx(s["rf1"])
    assert c["rf2"]["teacher"] == pytest.approx(s["rf1"])
    assert c["rf2"]["pairs"] == pytest.approx(s["pairs2"])
    assert c["student"]["total"] == pytest.approx(s["rf1"] + s["pairs2"] + s["rf2"]
                                                 + s["endpoints"] + s["student"])


def test_student_sampler_is_one_call(board):
    model = board.jobs["student"].sampler_model
    calls = []
    h = model.register_forward_hook(lambda *a: calls.append(1))
    sol = sb.sampler("student", model)(torch.randn(10, 2), 1)
    h.remove()
    assert len(calls) == 1 and sol.nfe == 1


def test_step_costs_are_ratios_of_measured_times():
    o = sb.step_overheads(tiny_runs(), n=3, reps=1)
    ms = o["ms"]
    assert o["meanflow"] == pytest.approx(ms["meanflow"] / ms["meanflow_fm"])
    assert o["shortcut"] == pytest.approx(ms["shortcut"] / ms["shortcut_fm"])
    assert all(v > 0 for v in ms.values())


def test_presets_fill_the_default_scoreboard():
    r = sb.scoreboard(sb.runs_for(), use_presets=True)
    if not r.jobs:
        pytest.skip("presets disabled (FLOWVIZ_PRESETS=0)")
    assert {"rf1", "pairs2", "rf2", "ot", "shortcut", "meanflow"} <= set(r.jobs)
    assert r.phase == "endpoints"


def test_progress_counts_only_this_sessions_training(board):
    """Phases loaded finished (a preset's, with their recorded seconds) add nothing to the
    elapsed time shown when training starts on the page."""
    r = sb.scoreboard(tiny_runs(), TINY_DISTILL, use_presets=False)
    r.jobs.update({k: j for k, j in board.jobs.items() if k not in ("endpoints", "student")})
    assert r.seconds > 0  # the loaded phases' own records
    frac, text = sb.progress(r)
    assert frac == pytest.approx(6 / 8) and "0.0 s so far in this session" in text
    r.advance()
    spent = sum(r.seconds_by_phase.values())
    assert set(r.seconds_by_phase) == {"endpoints"} and spent > 0
    frac, text = sb.progress(r)
    assert f"{spent:.1f} s so far in this session" in text and 6 / 8 < frac < 1


def test_budgets_count_the_flows_a_method_was_made_from():
    runs = tiny_runs()
    b = sb.budgets(runs, TINY_DISTILL)
    rf = runs["reflow"]
    rf1 = rf.base.optim.steps * rf.base.batch
    rf2 = rf.reflow.optim.steps * rf.reflow.batch
    assert b["rf1"]["examples"] == rf1 and b["rf2"]["examples"] == rf1 + rf2
    assert b["student"]["examples"] == rf1 + rf2 + 20 * 64
    for k in ("ot", "shortcut", "meanflow"):
        assert (b[k]["steps"], b[k]["batch"], b[k]["width"]) == (
            runs[k].optim.steps, runs[k].batch, runs[k].model.hidden)
        assert b[k]["examples"] == runs[k].optim.steps * runs[k].batch
