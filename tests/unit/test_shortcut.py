"""flowviz.methods.shortcut against analytic oracles.

The oracle is the exact 1-rectified flow from N(0, I) to N(mu, sigma^2 I): the marginals are
N(t mu, s_t^2 I) with s_t = sqrt((1 - t)^2 + t^2 sigma^2), the flow is the affine map
x_t = t mu + s_t x0, its velocity is linear in x, and its exact shortcut (the average direction
over [t, t + d]) is s*(x, t, d) = (phi_{t -> t+d}(x) - x) / d in closed form.
"""

import json
import math

import pytest
import torch

import flowviz as fv
from flowviz import data, metrics
from flowviz.methods.fm import fm_loss
from flowviz.methods.shortcut import (
    HALVES,
    TEMPLATES,
    ShortcutConfig,
    Template,
    TemplateError,
    at_d,
    consistency_picture,
    draw_steps,
    sample,
    shortcut_loss,
    shortcut_target,
)
from flowviz.models import MLPConfig, TimeMLP

MU, SIGMA = torch.tensor([2.0, -1.0], dtype=torch.float64), 0.5


def s_t(t):
    return torch.sqrt((1 - t) ** 2 + t**2 * SIGMA**2)


class ExactShortcut(torch.nn.Module):
    """s*(x, t, d) of the Gaussian-to-Gaussian 1-RF flow; d = 0 gives its velocity v(x, t)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, t, d):
        self.calls.append((t.clone(), d.clone()))
        t, d = t[:, None].double(), d[:, None].double()
        x0 = (x - t * MU) / s_t(t)  # the noise this point came from
        ds = (-(1 - t) + t * SIGMA**2) / s_t(t)  # d s_t / dt
        v = MU + ds * x0
        end = (t + d) * MU + s_t(t + d) * x0
        return torch.where(d > 0, (end - x) / d.clamp_min(1e-300), v)


def points(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, generator=g, dtype=torch.float64) * 0.5
    x = t[:, None] * MU + s_t(t)[:, None] * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return x, t


# --- the loss -------------------------------------------------------------------------------
def test_loss_reduces_to_flow_matching_when_every_d_is_zero():
    torch.manual_seed(0)
    model = TimeMLP(MLPConfig(hidden=32, depth=2, n_scalars=2))
    g = torch.Generator().manual_seed(1)
    x0, x1 = torch.randn(128, 2, generator=g), 3 * torch.randn(128, 2, generator=g)
    t = torch.rand(128, generator=g)
    loss, l_fm, l_sc = shortcut_loss(model, x0, x1, t, torch.zeros(128))
    xt = (1 - t[:, None]) * x0 + t[:, None] * x1
    by_hand = (model(xt, t, torch.zeros(128)) - (x1 - x0)).pow(2).sum(1).mean()
    assert torch.allclose(loss, by_hand, rtol=1e-6) and torch.allclose(l_fm, by_hand, rtol=1e-6)
    assert torch.allclose(loss, fm_loss(at_d(model, 0.0), x0, x1, t), rtol=1e-6)
    assert math.isnan(l_sc)
    # its gradient is the FM gradient too
    gl = torch.autograd.grad(loss, list(model.parameters()))
    gh = torch.autograd.grad(by_hand, list(model.parameters()))
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(gl, gh, strict=True))


def test_loss_mixes_the_parts_by_their_share_of_the_batch():
    torch.manual_seed(0)
    model = TimeMLP(MLPConfig(hidden=32, depth=2, n_scalars=2))
    g = torch.Generator().manual_seed(2)
    x0, x1 = torch.randn(8, 2, generator=g), torch.randn(8, 2, generator=g)
    t = torch.full((8,), 0.25)
    D = torch.tensor([0, 0, 0, 0, 0, 0, 0.25, 0.5])
    loss, l_fm, l_sc = shortcut_loss(model, x0, x1, t, D)
    assert torch.allclose(loss, (6 * l_fm + 2 * l_sc) / 8)
    xt = (1 - t[6:, None]) * x0[6:] + t[6:, None] * x1[6:]
    tgt = shortcut_target(model, xt, t[6:], D[6:])
    assert not tgt.requires_grad  # stop-gradient target
    assert torch.allclose(l_sc, (model(xt, t[6:], D[6:]) - tgt).pow(2).sum(1).mean())
    # the objective's path: the row count given (no read from the device), the same loss
    assert torch.equal(shortcut_loss(model, x0, x1, t, D, n_sc=2)[0], loss)
    with pytest.raises(ValueError, match="last"):  # self-consistency rows come last
        shortcut_loss(model, x0, x1, t, D.flip(0))


def test_exact_flow_map_is_a_fixed_point_of_the_self_consistency_loss():
    x, t = points()
    x1 = x  # unused by the SC rows except through x_t: pick x0 = x1 = x so x_t = x
    for D in (0.5, 0.25, 0.0625):
        _, _, l_sc = shortcut_loss(ExactShortcut(), x, x1, t, torch.full_like(t, D), d_min=1e-9)
        assert l_sc < 1e-20


# --- the target: two half steps of an exact linear field -----------------------------------------
@pytest.mark.parametrize("name", ["halves", "two_thirds", "thirds"])
@pytest.mark.parametrize("D", [1.0, 0.5, 0.125])
def test_consistent_target_equals_the_exact_average_direction(name, D):
    x, t = points()
    t = t * (1 - D) / 0.5  # keep t + D <= 1
    exact = ExactShortcut()
    target = shortcut_target(exact, x, t, torch.full_like(t, D), TEMPLATES[name], d_min=1e-9)
    truth = exact(x, t, torch.full_like(t, D))
    assert torch.allclose(target, truth, atol=1e-10), (target - truth).abs().max()
    # and the segments were evaluated where the walk is: times t + alpha_i D, sizes beta_i D
    seg = TEMPLATES[name].segments
    alpha = [sum(seg[:i]) for i in range(len(seg))]
    for (ti, di), a, b in zip(exact.calls, alpha, seg, strict=False):
        assert torch.allclose(ti, t + a * D) and torch.allclose(di, torch.full_like(t, b * D))


def test_two_half_steps_match_the_closed_form_at_the_finest_level():
    """At D = d_min the halves use d = 0: target = ½ v(x, t) + ½ v(x + D/2 v, t + D/2)."""
    x, t = points()
    D, exact = 1 / 128, ExactShortcut()
    target = shortcut_target(exact, x, t, torch.full_like(t, D), HALVES, d_min=1 / 128)
    zero = torch.zeros_like(t)
    v1 = exact(x, t, zero)
    by_hand = 0.5 * v1 + 0.5 * exact(x + D / 2 * v1, t + D / 2, zero)
    assert torch.allclose(target, by_hand, atol=1e-12)
    # two Euler half-steps: the direction is first-order accurate, error ~ D (halves with D)

    def err(D):
        tgt = shortcut_target(exact, x, t, torch.full_like(t, D), HALVES, d_min=D)
        return (tgt - exact(x, t, torch.full_like(t, D))).norm(dim=1).mean()

    assert 1.9 < err(1 / 64) / err(1 / 128) < 2.1
    assert err(1 / 128) < 0.01


def test_inconsistent_template_breaks_the_fixed_point():
    x, t = points()
    D = torch.full_like(t, 0.5)
    exact = ExactShortcut()
    target = shortcut_target(exact, x, t, D, TEMPLATES["first_only"], d_min=1e-9)
    # weights (1, 0): the target is the half-step direction, not the whole step's
    assert torch.allclose(target, exact(x, t, D / 2), atol=1e-10)
    assert (target - exact(x, t, D)).norm(dim=1).mean() > 0.05


# --- the sampler ------------------------------------------------------------------------------
@pytest.mark.parametrize("m", [1, 2, 3, 7, 128])
def test_sampler_makes_exactly_m_calls_with_d_one_over_m(m):
    exact = ExactShortcut()
    x0 = torch.randn(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    sol = sample(exact, x0, m, return_traj=True)
    assert len(exact.calls) == m and sol.nfe == m and len(sol.traj) == m + 1
    for k, (t, d) in enumerate(exact.calls):
        assert torch.allclose(d, torch.full_like(d, 1 / m))
        assert torch.allclose(t, torch.full_like(t, k / m), atol=1e-12)
    # the exact shortcut maps noise to N(mu, sigma^2 I) exactly, at any M
    assert torch.allclose(sol.x, MU + SIGMA * x0, atol=1e-10)


def test_consistency_picture_of_the_exact_field_closes_the_gap():
    x, _ = points(16)
    pic = consistency_picture(ExactShortcut(), x, 0.25, 0.25)
    assert pic["gap"].max() < 1e-10
    assert (pic["mid"] - x).norm(dim=1).min() > 0  # the midpoint is a real step away


# --- templates and the d-grid --------------------------------------------------------------------
@pytest.mark.parametrize("seg,w,msg", [
    ((), (), "at least one"),
    ((0.5, 0.5), (1.0,), "weights"),
    ((0.6, 0.6), (0.5, 0.5), "sum to 1.2"),
    ((1.5, -0.5), (0.5, 0.5), "positive"),
    ((0.5, float("nan")), (0.5, 0.5), "finite"),
])
def test_template_validation_rejects_walks_that_do_not_cover_the_step(seg, w, msg):
    with pytest.raises(TemplateError, match=msg):
        Template(seg, w)


def test_template_consistency_is_weights_equal_segments():
    assert all(TEMPLATES[k].consistent and not TEMPLATES[k].problems()
               for k in ("halves", "two_thirds", "thirds"))
    bad = TEMPLATES["first_only"]
    assert not bad.consistent and "fixed point" in bad.problems()[0]
    scaled = Template((0.5, 0.5), (0.6, 0.6))
    assert len(scaled.problems()) == 2 and "sum to 1.2" in scaled.problems()[1]
    assert Template([0.25, 0.75], [0.25, 0.75]).segments == (0.25, 0.75)  # lists -> tuples
    assert HALVES.label() == "segments (1/2, 1/2) · weights (1/2, 1/2)"


def test_draw_steps_on_the_power_of_two_grid_with_aligned_times():
    t, D = draw_steps(ShortcutConfig(m_max=128), 20000, torch.Generator().manual_seed(0))
    m = 1 / D
    assert torch.allclose(m, 2 ** torch.log2(m).round())
    assert set(m.round().int().tolist()) == {1, 2, 4, 8, 16, 32, 64, 128}
    k = t * m
    assert torch.allclose(k, k.round(), atol=1e-4) and (t + D <= 1 + 1e-6).all()
    # k uniform over {0..M-1}: at M = 2, half the rows start at t = 0.5
    half = t[m.round() == 2]
    assert abs((half == 0.5).float().mean() - 0.5) < 0.05
    t, D = draw_steps(ShortcutConfig(d_grid="steps", m_max=128), 20000,
                      torch.Generator().manual_seed(0))
    ms = set((1 / D).round().int().tolist())
    assert {3, 5, 6, 7, 100} <= ms and max(ms) == 128 and min(ms) == 1


def test_off_grid_steps_are_the_ones_no_target_trains():
    halves = ShortcutConfig()
    assert halves.grid() == [1, 2, 4, 8, 16, 32, 64, 128] and halves.off_grid() == []
    assert ShortcutConfig(d_grid="steps", m_max=16).off_grid() == []
    # 2/3 + 1/3 of D = 1/M: neither 3M/2 nor 3M is a power of two
    unequal = ShortcutConfig(template=TEMPLATES["two_thirds"])
    assert (1, pytest.approx(2 / 3)) in unequal.off_grid()
    assert (1, pytest.approx(1 / 3)) in unequal.off_grid()
    # with any step count, 1/3 of D = 1/M is the step 1/(3M): trained while 3M <= m_max and
    # below d_min after; 2/3 of D = 1/M is 1/(3M/2), trained only for even M, and below
    # d_min = 1/12 (so the FM velocity) once 3M/2 > 12: off the grid for odd M <= 8
    steps = ShortcutConfig(d_grid="steps", m_max=12, template=TEMPLATES["two_thirds"])
    assert {m for m, h in steps.off_grid()} == {1, 3, 5, 7}
    assert all(abs(h - 2 / (3 * m)) < 1e-12 for m, h in steps.off_grid())
    assert ShortcutConfig(d_grid="steps", template=TEMPLATES["thirds"]).off_grid() == []


def test_config_rejects_bad_settings():
    with pytest.raises(ValueError):
        ShortcutConfig(m_max=100)  # not a power of two on the pow2 grid
    ShortcutConfig(m_max=100, d_grid="steps")
    with pytest.raises(ValueError):
        ShortcutConfig(sc_frac=1.5)
    with pytest.raises(ValueError):
        ShortcutConfig(target="teacher")


# --- runs -------------------------------------------------------------------------------------
def test_run_config_round_trips_and_shares_its_network_with_the_fm_baseline():
    run = fv.ShortcutRun(target="8gaussians", shortcut=ShortcutConfig(
        template=TEMPLATES["two_thirds"], target="stopgrad"))
    assert fv.ShortcutRun.from_dict(json.loads(run.to_json())) == run
    base = run.fm_baseline(steps=123)
    assert type(base) is fv.FMRun and base.optim.steps == 123 and base.target == "8gaussians"
    assert base.model.n_scalars == 1 and base.model.hidden == run.model.hidden
    with pytest.raises(ValueError):
        fv.ShortcutRun(model=MLPConfig(n_scalars=1))


def test_ema_target_is_the_states_ema_copy():
    run = fv.ShortcutRun(batch=64, model=MLPConfig(hidden=16, depth=1, n_scalars=2),
                         optim=fv.OptimConfig(steps=2))
    st = fv.build_shortcut(run)
    assert st.objective.ema is st.ema is not None
    st = fv.build_shortcut(fv.ShortcutRun(model=run.model, optim=fv.OptimConfig(ema=0)))
    with pytest.raises(ValueError, match="EMA"):
        st.objective(st.model, st.generator)


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from a second thread, and lose a lot on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_tiny_run_learns_a_one_step_jump_better_than_euler_of_its_own_velocity(one_thread):
    torch.manual_seed(0)
    run = fv.ShortcutRun(target="8gaussians", batch=128,
                         model=MLPConfig(hidden=48, depth=2, n_scalars=2),
                         optim=fv.OptimConfig(steps=250, warmup=20, seed=0),
                         shortcut=ShortcutConfig(target="stopgrad", m_max=8))
    st = fv.build_shortcut(run)
    fv.train_steps(st, 250)
    assert st.status == "done" and {"L_FM", "L_SC"} <= set(st.history[-1])
    model = st.sampler_model
    x0 = data.sample("gaussian", 1500, seed=5)[0]
    ref = data.sample("8gaussians", 1500, seed=6)[0]
    jump = metrics.energy_distance(sample(model, x0, 1).x, ref)
    euler = metrics.energy_distance(fv.solve(at_d(model, 0.0), x0, "euler", 1).x, ref)
    assert jump < 0.5 * euler, (jump, euler)
