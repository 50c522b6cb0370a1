"""flowviz.train: a tiny FM run learns, the NaN guard, exact resumability, the LR schedule."""

import copy
import dataclasses
import math

import pytest
import torch

from flowviz import data, metrics
from flowviz.methods.fm import fm_loss, fm_objective
from flowviz.models import MLPConfig, TimeMLP
from flowviz.solvers import solve
from flowviz.train import OptimConfig, init_state, lr_at, train_steps

TINY = MLPConfig(hidden=64, depth=2)


def fm_state(steps, seed=0, target="8gaussians", batch=256, **optim):
    torch.manual_seed(seed)  # model init
    obj = fm_objective(data.SAMPLERS["gaussian"], data.SAMPLERS[target], batch)
    return init_state(TimeMLP(TINY), obj, OptimConfig(steps=steps, seed=seed, **optim))


def params(module):
    return [p.detach().clone() for p in module.parameters()]


def same(a, b):
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_tiny_fm_run_improves_samples():
    st = fm_state(300, warmup=20)
    x0, _ = data.sample("gaussian", 1000, seed=10)
    ref, _ = data.sample("8gaussians", 1000, seed=11)
    before = metrics.energy_distance(solve(st.sampler_model, x0, "euler", 20).x, ref)
    train_steps(st, 300)
    assert st.status == "done" and st.done and st.step == 300
    after = metrics.energy_distance(solve(st.sampler_model, x0, "euler", 20).x, ref)
    assert after < 0.3 * before, (before, after)
    losses = [h["loss"] for h in st.history]
    assert len(losses) == 30 and sum(losses[-5:]) < 0.8 * sum(losses[:5])
    assert st.ema is not None and not same(params(st.ema), params(st.model))
    # never past cfg.steps
    train_steps(st, 10)
    assert st.step == 300 and st.status == "done"


class NaNAt:
    """Wraps an objective; the n-th call (1-based) returns a NaN loss (or a NaN gradient)."""

    def __init__(self, objective, n, grad=False):
        self.objective, self.n, self.calls, self.grad = objective, n, 0, grad

    def __call__(self, model, g):
        self.calls += 1
        loss, logs = self.objective(model, g)
        if self.calls == self.n:
            if self.grad:  # finite loss, NaN gradient: d sqrt(u)/du at u = 0
                p = next(model.parameters())
                loss = loss + torch.sqrt((p - p.detach()).pow(2).sum())
            else:
                loss = loss * float("nan")
        return loss, logs


@pytest.mark.parametrize("grad", [False, True])
def test_nan_guard_stops_and_restores_last_good_chunk(grad):
    st = fm_state(50, batch=64, warmup=2)
    st.objective = NaNAt(st.objective, 5, grad)
    train_steps(st, 3)  # a good chunk
    good, good_ema = params(st.model), params(st.ema)
    good_opt = copy.deepcopy(st.opt.state_dict()["state"])
    good_step = st.step
    train_steps(st, 10)  # steps 4 .. : the 5th objective call is NaN
    assert st.status == "nan" and st.done
    assert "NaN" in st.message and "step" in st.message
    assert same(params(st.model), good)
    assert all(torch.isfinite(p).all() for p in st.model.parameters())
    assert torch.equal(st.opt.state_dict()["state"][0]["exp_avg"], good_opt[0]["exp_avg"])
    # the whole state is rolled back: the EMA (what pages sample from) and the step counter
    assert same(params(st.ema), good_ema)
    assert st.step == good_step
    # a stopped state stays stopped
    calls = st.objective.calls
    train_steps(st, 10)
    assert st.status == "nan" and st.objective.calls == calls and same(params(st.model), good)


def test_blow_up_does_not_poison_the_ema():
    """A too-large learning rate: one finite-gradient step makes the weights explode (the EMA
    follows), the next loss is NaN. After the stop, the model *and* the EMA sampled by the pages
    are the last good chunk's, so samples stay finite."""
    st = fm_state(50, batch=64, warmup=1)
    train_steps(st, 3)
    good, good_ema = params(st.model), params(st.ema)
    st.cfg = dataclasses.replace(st.cfg, lr=1e10, grad_clip=0.0)
    train_steps(st, 20)
    assert st.status == "nan" and st.step == 3
    assert same(params(st.model), good) and same(params(st.ema), good_ema)
    v = st.sampler_model(torch.randn(8, 2), torch.full((8,), 0.5))
    assert torch.isfinite(v).all()


def test_resume_in_chunks_equals_one_run():
    a, b, c = fm_state(20, batch=64, warmup=5), fm_state(20, batch=64, warmup=5), \
        fm_state(20, batch=64, warmup=5)
    assert same(params(a.model), params(b.model))
    train_steps(a, 10)
    assert a.status == "running" and not a.done
    train_steps(a, 10)
    train_steps(b, 20)
    for k in (7, 1, 12):
        train_steps(c, k)
    for s in (b, c):
        assert same(params(a.model), params(s.model))
        assert same(params(a.ema), params(s.ema))
        assert a.history == s.history and s.step == 20 and s.status == "done"
    d = fm_state(20, seed=1, batch=64, warmup=5)
    train_steps(d, 20)
    assert not same(params(a.model), params(d.model))


def test_lr_schedule_warmup_cosine_constant():
    cfg = OptimConfig(steps=1100, lr=1e-3, warmup=100, min_lr_frac=0.1)
    # linear warmup reaching lr at the last warmup step
    assert lr_at(cfg, 0) == pytest.approx(1e-5)
    assert lr_at(cfg, 49) == pytest.approx(5e-4)
    assert lr_at(cfg, 99) == pytest.approx(1e-3)
    # cosine from lr (p = 0) to min_lr_frac * lr (p = 1), with the half-way value in between
    for step, p in ((100, 0.0), (350, 0.25), (600, 0.5), (1100, 1.0), (5000, 1.0)):
        want = 1e-3 * (0.1 + 0.9 * (1 + math.cos(math.pi * p)) / 2)
        assert lr_at(cfg, step) == pytest.approx(want)
    assert lr_at(cfg, 600) == pytest.approx(0.55e-3)
    lrs = [lr_at(cfg, s) for s in range(100, 1101)]
    assert all(x >= y for x, y in zip(lrs, lrs[1:], strict=False))
    const = OptimConfig(steps=1000, lr=2e-3, warmup=10, schedule="constant")
    assert lr_at(const, 500) == lr_at(const, 999) == 2e-3 and lr_at(const, 4) == pytest.approx(1e-3)


def test_optimizer_uses_the_scheduled_lr():
    st = fm_state(40, batch=32, warmup=10, lr=1e-2)
    train_steps(st, 3)
    assert st.opt.param_groups[0]["lr"] == pytest.approx(lr_at(st.cfg, 2))


def test_fm_loss_closed_form_with_zero_model():
    """With v = 0 the FM loss is E|x1 - x0|^2 (linear path)."""
    x0 = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    x1 = torch.tensor([[3.0, 4.0], [1.0, 2.0]])

    def zero(x, t):
        return torch.zeros_like(x)

    assert float(fm_loss(zero, x0, x1, torch.tensor([0.3, 0.8]))) == pytest.approx(13.0)


@pytest.mark.parametrize("grad", [False, True])
def test_deferred_nan_check_rolls_back_the_same(grad):
    """The accelerator path (flags read every check_every steps) restores exactly what the
    per-step check does, and names the step of the first NaN."""
    st = fm_state(50, batch=64, warmup=2)
    st.objective = NaNAt(st.objective, 5, grad)
    train_steps(st, 3, check_every=4)
    good, good_ema, good_step = params(st.model), params(st.ema), st.step
    good_opt = copy.deepcopy(st.opt.state_dict()["state"])
    train_steps(st, 10, check_every=4)
    assert st.status == "nan" and st.step == good_step == 3
    assert "step 4" in st.message
    assert same(params(st.model), good) and same(params(st.ema), good_ema)
    assert torch.equal(st.opt.state_dict()["state"][0]["exp_avg"], good_opt[0]["exp_avg"])
    # without a NaN, deferred checks train exactly as per-step checks
    a, b = fm_state(20, batch=64, warmup=5), fm_state(20, batch=64, warmup=5)
    train_steps(a, 20)
    for _ in range(2):
        train_steps(b, 10, check_every=7)
    assert same(params(a.model), params(b.model)) and a.history == b.history


def test_nan_in_first_chunk_restores_the_fresh_optimizer():
    st = fm_state(50, batch=64, warmup=2)
    w0 = params(st.model)
    st.objective = NaNAt(st.objective, 2)
    train_steps(st, 5)
    assert st.status == "nan" and st.step == 0 and same(params(st.model), w0)
    assert not st.opt.state
