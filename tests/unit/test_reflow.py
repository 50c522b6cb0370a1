"""flowviz.methods.reflow: time samplers and losses against closed forms, pair generation against
the solver and exact ODE solutions, the k-RF driver, and each 2-RF training choice doing what it
claims (Lee, Lin & Fanti 2024)."""

import math

import pytest
import torch

from flowviz import data, metrics
from flowviz.analysis import path_metrics
from flowviz.methods.fm import fm_loss, fm_objective, squared_error, uniform_t
from flowviz.methods.reflow import (
    PairGeneration,
    Pairs,
    ReflowConfig,
    generate_pairs,
    init_model,
    invert,
    logit_normal_t,
    next_round,
    pseudo_huber,
    reflow_objective,
    time_pdf,
    time_sampler,
    u_shaped_t,
)
from flowviz.models import MLPConfig, TimeMLP
from flowviz.solvers import solve
from flowviz.train import OptimConfig, init_state, train_steps

TINY = MLPConfig(hidden=64, depth=2)


def u_cdf(t, a):
    """Closed-form CDF of the density a (e^{at} + e^{a(1-t)}) / (2 (e^a - 1)) on [0, 1]."""
    return (math.exp(a * t) - 1 + math.exp(a) - math.exp(a * (1 - t))) / (2 * math.expm1(a))


# --- time distributions ------------------------------------------------------------------------


@pytest.mark.parametrize("a", [1.0, 4.0])
def test_u_shaped_histogram_matches_closed_form_cdf(a):
    n = 200_000
    t = u_shaped_t(n, torch.zeros(1), torch.Generator().manual_seed(0), a=a).double()
    assert t.min() >= 0 and t.max() <= 1
    edges = torch.linspace(0, 1, 21, dtype=torch.float64)
    counts = torch.histc(t, 20, 0, 1) / n
    want = torch.tensor([u_cdf(float(edges[i + 1]), a) - u_cdf(float(edges[i]), a)
                         for i in range(20)])
    sd = (want * (1 - want) / n).sqrt()
    assert ((counts - want).abs() < 5 * sd).all(), (counts, want)


def test_u_shaped_puts_more_mass_near_the_ends_than_in_the_middle():
    t = u_shaped_t(100_000, torch.zeros(1), torch.Generator().manual_seed(1))
    ends = ((t < 0.1) | (t > 0.9)).double().mean()  # width 0.2
    middle = ((t > 0.4) & (t < 0.6)).double().mean()  # width 0.2
    assert ends > 2.5 * middle  # closed form for a = 4: 0.345 vs 0.113
    assert abs(float(ends) - 2 * u_cdf(0.1, 4.0)) < 0.01
    u = uniform_t(100_000, torch.zeros(1), torch.Generator().manual_seed(1))
    assert abs(((u < 0.1) | (u > 0.9)).double().mean() - 0.2) < 0.01


@pytest.mark.parametrize("name,kw", [("uniform", {}), ("u_shaped", {"a": 4.0}),
                                     ("u_shaped", {"a": 0.0}),
                                     ("logit_normal", {"mean": 0.5, "std": 0.8})])
def test_time_pdf_integrates_to_one_and_matches_the_sampler(name, kw):
    grid = torch.linspace(1e-6, 1 - 1e-6, 20_001, dtype=torch.float64)
    pdf = time_pdf(name, grid, **kw)
    assert float(torch.trapezoid(pdf, grid)) == pytest.approx(1.0, abs=2e-3)
    t = time_sampler(name, **kw)(100_000, torch.zeros(1, dtype=torch.float64),
                                 torch.Generator().manual_seed(2))
    # P(t < 0.3) from the sampler vs the integral of the pdf
    m = grid < 0.3
    assert float((t < 0.3).double().mean()) == pytest.approx(
        float(torch.trapezoid(pdf[m], grid[m])), abs=0.006)


def test_logit_normal_has_the_stated_moments_on_the_logit_scale():
    t = logit_normal_t(100_000, torch.zeros(1, dtype=torch.float64),
                       torch.Generator().manual_seed(3), mean=-0.7, std=1.3)
    z = torch.logit(t)
    assert float(z.mean()) == pytest.approx(-0.7, abs=0.02)
    assert float(z.std()) == pytest.approx(1.3, abs=0.02)


def test_samplers_are_reproducible_from_the_generator_and_follow_like():
    like = torch.zeros(1, dtype=torch.float64)
    for name in ("uniform", "u_shaped", "logit_normal"):
        s = time_sampler(name)
        a = s(50, like, torch.Generator().manual_seed(7))
        b = s(50, like, torch.Generator().manual_seed(7))
        assert torch.equal(a, b) and a.dtype == torch.float64 and a.shape == (50,)


# --- losses --------------------------------------------------------------------------------------


def test_pseudo_huber_closed_forms():
    r = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1e-3, 0.0], [300.0, 400.0]], dtype=torch.float64)
    out = pseudo_huber(r, 1.0)
    assert float(out[0]) == pytest.approx(math.sqrt(26) - 1)
    assert float(out[1]) == 0.0
    assert float(out[2]) == pytest.approx(1e-6 / 2, rel=1e-5)  # ~ |r|^2 / (2c) near 0
    assert float(out[3]) == pytest.approx(500 - 1, rel=1e-5)  # ~ |r| - c far away
    assert float(pseudo_huber(r, 0.0)[0]) == pytest.approx(5.0)  # c = 0: the norm


def test_fm_loss_takes_a_t_sampler_and_a_loss():
    x0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    x1 = torch.randn(64, 2, generator=torch.Generator().manual_seed(1)) + 3

    def zero(x, t):
        return torch.zeros_like(x)

    d = (x1 - x0).pow(2).sum(1)
    # with v = 0 the residual is x1 - x0 whatever t is: closed forms for both losses
    assert float(fm_loss(zero, x0, x1)) == pytest.approx(float(d.mean()), rel=1e-6)
    c = 0.5
    got = fm_loss(zero, x0, x1, time_sampler("u_shaped"), loss=lambda r: pseudo_huber(r, c))
    assert float(got) == pytest.approx(float(((d + c * c).sqrt() - c).mean()), rel=1e-6)

    # a sampler drawn inside fm_loss equals the same draw passed as a tensor
    m = TimeMLP(TINY)
    s = time_sampler("logit_normal")
    a = fm_loss(m, x0, x1, s, generator=torch.Generator().manual_seed(5))
    t = s(64, x0, torch.Generator().manual_seed(5))
    assert torch.equal(a, fm_loss(m, x0, x1, t))
    assert torch.equal(squared_error(x1 - x0), d)


# --- pair generation --------------------------------------------------------------------------


def test_pairs_reproduce_the_solvers_endpoints_in_any_chunking():
    torch.manual_seed(0)
    model = TimeMLP(TINY).eval()
    x0 = torch.randn(103, 2)
    for method, steps in (("rk4", 12), ("euler", 5), ("dopri5", 0)):
        want = solve(model, x0, method, steps, rtol=1e-6, atol=1e-6).x
        p = generate_pairs(model, x0, method, steps, tol=1e-6, chunk=103)
        assert torch.equal(p.x0, x0) and torch.allclose(p.x1, want, atol=1e-6)
        if method in ("rk4", "euler"):  # fixed steps: chunking changes nothing
            pc = generate_pairs(model, x0, method, steps, chunk=10)
            assert torch.allclose(pc.x1, want, atol=1e-6)
            assert pc.nfe == 11 * steps * (4 if method == "rk4" else 1)


def test_pairs_of_images_match_the_exact_linear_ode_and_invert():
    """dx/dt = -x on (B, 3, 4, 4): x1 = e^{-1} x0, and backwards x0 = e x1."""
    x0 = torch.randn(20, 3, 4, 4, dtype=torch.float64)

    def field(x, t):
        assert t.shape == (x.shape[0],)
        return -x

    p = generate_pairs(field, x0, "dopri5", tol=1e-9, chunk=6)
    assert p.x1.shape == x0.shape and torch.allclose(p.x1, x0 * math.exp(-1), atol=1e-7)
    q = invert(field, p.x1, "rk4", 50, chunk=7)
    assert torch.equal(q.x1, p.x1) and torch.allclose(q.x0, x0, atol=1e-6)


def test_pair_generation_passes_per_sample_conditions_by_chunk():
    x0 = torch.zeros(25, 2)
    label = torch.arange(25)

    def field(x, t, label):  # constant velocity (label, 0): x1 = x0 + (label, 0)
        assert len(label) == len(x)
        return torch.stack([label.float(), torch.zeros(len(x))], 1)

    p = generate_pairs(field, x0, "euler", 3, chunk=4, label=label)
    assert torch.allclose(p.x1[:, 0], label.float()) and torch.equal(p.cond["label"], label)


def test_pair_generation_is_resumable_and_reports_progress():
    g = PairGeneration(lambda x, t: torch.ones_like(x), torch.zeros(10, 2), "euler", 2, chunk=4)
    assert not g.done and g.progress == 0
    g.advance()
    assert g.n_done == 4 and g.progress == pytest.approx(0.4)
    with pytest.raises(RuntimeError):
        g.result()
    g.advance(5)
    assert g.done and g.nfe == 6 and torch.allclose(g.result().x1, torch.ones(10, 2))


# --- the (k+1)-RF objective and the driver ------------------------------------------------------


def test_real_pairs_are_mixed_with_probability_p():
    syn = Pairs(torch.zeros(50, 2), torch.zeros(50, 2))
    real = Pairs(torch.zeros(30, 2), torch.ones(30, 2))
    zero = Zero()
    for p in (0.0, 0.3, 1.0):
        obj = reflow_objective(syn, 400, real=real, p_real=p)
        g = torch.Generator().manual_seed(0)
        losses = [obj(zero, g)[0].item() for _ in range(50)]
        # a real pair has |x1 - x0|^2 = 2, a synthetic one 0: the mean loss is 2 p
        assert sum(losses) / len(losses) == pytest.approx(2 * p, abs=0.03)
    with pytest.raises(ValueError):
        reflow_objective(syn, 8, p_real=0.5)


class Zero(torch.nn.Module):
    """v = 0, with one (unused) parameter so objectives can find its device."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, t):
        return torch.zeros_like(x) + 0 * self.w


class SpyModel(TimeMLP):
    """Records the times the objective asks about."""

    seen: list

    def forward(self, x, t, **kw):
        self.seen.append(t.detach().clone())
        return super().forward(x, t, **kw)


def test_the_time_control_changes_the_times_training_sees():
    pairs = Pairs(torch.randn(200, 2), torch.randn(200, 2))
    fracs = {}
    for name in ("uniform", "u_shaped"):
        cfg = ReflowConfig(t_dist=name, batch=256, optim=OptimConfig(steps=20, warmup=1))
        m = SpyModel(TINY)
        m.seen = []
        state = init_state(m, reflow_objective(pairs, cfg.batch, cfg.sampler()), cfg.optim)
        train_steps(state, 20)
        t = torch.cat(m.seen)
        fracs[name] = float(((t < 0.1) | (t > 0.9)).double().mean() /
                            ((t > 0.4) & (t < 0.6)).double().mean())
    assert fracs["uniform"] == pytest.approx(1.0, abs=0.15)
    assert fracs["u_shaped"] > 2.5


def test_init_previous_copies_the_weights_and_scratch_does_not():
    torch.manual_seed(1)
    prev = TimeMLP(TINY).requires_grad_(False)
    x, t = torch.randn(16, 2), torch.rand(16)
    same = init_model(prev, ReflowConfig(init="previous"))
    fresh = init_model(prev, ReflowConfig(init="scratch", optim=OptimConfig(seed=0)))
    assert torch.equal(same(x, t), prev(x, t))
    assert not torch.allclose(fresh(x, t), prev(x, t))
    torch.manual_seed(0)  # scratch: the initial weights of a new network seeded like the run
    assert torch.equal(fresh(x, t), TimeMLP(TINY)(x, t))
    assert all(p.requires_grad for p in same.parameters())
    with torch.no_grad():  # an independent copy: training it leaves prev alone
        next(same.parameters()).add_(1.0)
    assert torch.equal(same(x, t) * 0 + prev(x, t), prev(x, t))
    assert not torch.equal(same(x, t), prev(x, t))


def one_rf(steps=500, seed=0):
    torch.manual_seed(seed)
    obj = fm_objective(data.SAMPLERS["gaussian"], data.SAMPLERS["8gaussians"], 256)
    st = init_state(TimeMLP(TINY), obj, OptimConfig(steps=steps, lr=3e-3, warmup=20, seed=seed))
    return train_steps(st, steps)


def test_two_rf_is_straighter_and_better_in_one_step_than_one_rf():
    st1 = one_rf()
    x0 = torch.randn(2000, 2, generator=torch.Generator().manual_seed(1))
    cfg = ReflowConfig(n_pairs=2000, solver="rk4", steps=16, batch=256,
                       optim=OptimConfig(steps=300, lr=1e-3, warmup=10))
    st2 = next_round(st1.sampler_model, x0, cfg)
    assert st2.meta["round"] == 2 and len(st2.meta["pairs"]) == 2000
    # the pairs are the 1-RF solver's endpoints
    want = solve(st1.sampler_model, x0[:50], "rk4", 16).x
    assert torch.allclose(st2.meta["pairs"].x1[:50], want, atol=1e-5)
    train_steps(st2, 300)
    z = torch.randn(1000, 2, generator=torch.Generator().manual_seed(2))
    s1 = path_metrics(st1.sampler_model, z, steps=40)["straightness"]
    s2 = path_metrics(st2.sampler_model, z, steps=40)["straightness"]
    assert s2 < 0.2 * s1, (s1, s2)
    ref = data.sample("8gaussians", 1000, seed=3)[0]
    ed1 = metrics.energy_distance(solve(st1.sampler_model, z, "euler", 1).x, ref)
    ed2 = metrics.energy_distance(solve(st2.sampler_model, z, "euler", 1).x, ref)
    assert ed2 < 0.3 * ed1, (ed1, ed2)


def test_real_data_is_inverted_through_the_previous_flow():
    st1 = one_rf(200)
    x1 = data.sample("8gaussians", 300, seed=4)[0]
    cfg = ReflowConfig(n_pairs=100, solver="rk4", steps=20, p_real=0.5, n_real=300,
                       optim=OptimConfig(steps=10))
    st2 = next_round(st1.sampler_model, torch.randn(100, 2), cfg, x1_real=x1)
    real = st2.meta["real"]
    assert torch.equal(real.x1, x1)
    back = solve(st1.sampler_model, real.x0, "rk4", 20).x  # the noise flows back to the data
    assert (back - x1).norm(dim=1).max() < 0.05
    train_steps(st2, 10)
    assert 0.3 < st2.history[-1]["real_fraction"] < 0.7  # 512 draws at p = 0.5
    with pytest.raises(ValueError):
        next_round(st1.sampler_model, torch.randn(10, 2), cfg)


def test_figures_normal_quantiles_and_svg_copies():
    from scipy.stats import norm

    from flowviz.viz import trajectories_fig
    from flowviz.viz.reflow import as_svg, normal_quantiles

    q = normal_quantiles(7)
    assert q == pytest.approx(norm.ppf((torch.arange(1, 8).numpy() - 0.5) / 7))
    fig = trajectories_fig(torch.randn(4, 6, 2))
    svg = as_svg(fig)
    assert "scattergl" in {t.type for t in fig.data} and {t.type for t in svg.data} == {"scatter"}
    for a, b in zip(fig.data, svg.data, strict=True):
        assert list(a.x) == pytest.approx(list(b.x), nan_ok=True) and a.name == b.name
