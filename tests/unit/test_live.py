"""flowviz.live: the flow-matching loss floor against a closed form and an independent
estimate, which loss part and time law it belongs to, and each model's few-step sampler."""

import dataclasses

import torch

from flowviz import data, live
from flowviz.exact import ExactField
from flowviz.experiment import FAST_MEANFLOW, FAST_SHORTCUT, FMRun
from flowviz.methods import meanflow as mf
from flowviz.methods.fm import fm_loss
from flowviz.models import MLPConfig, TimeMLP


def gaussian_floor(m: torch.Tensor, s: float, n: int = 200_001) -> float:
    """N(0, I) -> N(m, s^2 I) on the linear path: (v, x_t) are jointly Gaussian, so per
    dimension Var[v | x_t] = (1 + s^2) - Cov(v, x_t)^2 / Var(x_t), Cov(v, x_t) = t s^2 - (1 - t)
    and Var(x_t) = (1 - t)^2 + t^2 s^2, whatever m; integrated over t ~ U(0, 1) (trapezoid)."""
    t = torch.linspace(0, 1, n, dtype=torch.float64)
    per_dim = (1 + s**2) - (t * s**2 - (1 - t)) ** 2 / ((1 - t) ** 2 + (t * s) ** 2)
    return len(m) * torch.trapezoid(per_dim, t).item()


def test_floor_of_a_gaussian_target_is_its_closed_form():
    m, s = torch.tensor([[1.5, -0.5]]), 0.3
    mean, se = live.fm_loss_floor(ExactField(m, h=s), n=40_000)
    exact = gaussian_floor(m[0], s)
    assert abs(mean - exact) < 4 * se and se < 0.02 * exact


def test_floor_equals_the_mean_conditional_variance_of_the_velocity():
    """An independent estimate on moons (1000 points, h = 0.05): E tr Cov[x1 - x0 | x_t] from
    the exact posterior covariance at x_t drawn with other seeds (no residual x1 - x0 - v*
    involved); and the flow-matching loss of v* itself, which attains the floor."""
    pts = data.sample("moons", 1000, 0)[0]
    field = ExactField(pts, h=0.05)
    mean, se = live.fm_loss_floor(field, n=20_000)
    g = torch.Generator().manual_seed(123)
    n = 20_000
    x1 = field.sample_target(n, g).double()
    x0 = torch.randn(x1.shape, generator=g, dtype=torch.float64)
    t = torch.rand(n, generator=g, dtype=torch.float64)
    xt = (1 - t[:, None]) * x0 + t[:, None] * x1
    cov = field.velocity_cov(xt, t).diagonal(dim1=1, dim2=2).sum(1)
    se_cov = (cov.std() / n**0.5).item()
    assert abs(mean - cov.mean().item()) < 4 * (se**2 + se_cov**2) ** 0.5
    fm = fm_loss(field, x0, x1, t).item()  # v*'s own loss on the same draws
    assert abs(fm - cov.mean().item()) < 4 * (se**2 + se_cov**2) ** 0.5
    assert 3.0 < mean < 4.5  # the level the live loss of moons levels off at


def test_floor_depends_on_the_time_law_meanflow_rows_use_the_smaller_draw():
    part, law = live.floor_part(dataclasses.replace(FAST_MEANFLOW, n_data=1000))
    assert part == {"mse_fm": 1.0} and law.time_sampler == "uniform"
    t = live.time_law(law)(100_000, torch.Generator().manual_seed(0))
    assert abs(t.mean().item() - 1 / 3) < 0.005  # min of two uniforms
    field = ExactField(data.sample("moons", 1000, 0)[0], h=0.05)
    uniform = live.fm_loss_floor(field, 20_000)
    smaller = live.fm_loss_floor(field, 20_000, live.time_law(law))
    assert smaller[0] > uniform[0] + 4 * (uniform[1] ** 2 + smaller[1] ** 2) ** 0.5


def test_floor_applies_only_to_independent_pairs_from_gaussian_noise():
    fm = FMRun(n_data=1000)
    assert live.floor_part(fm) == ({"loss": 1.0}, None)
    assert live.floor_part(FAST_SHORTCUT) == ({"L_FM": 1.0, "loss": 384 / 512}, None)
    assert live.floor_part(dataclasses.replace(fm, coupling="ot")) is None
    assert live.floor_part(dataclasses.replace(fm, source="8gaussians")) is None
    assert live.floor_part(("rf2", fm, None)) is None
    assert live.run_field(FMRun(n_data=0)) is None  # fresh samples: no closed form
    assert live.data_of(dataclasses.replace(FAST_MEANFLOW, n_data=7)) == FMRun(n_data=7)


def test_few_step_uses_each_model_s_own_sampler():
    torch.manual_seed(0)
    x0 = torch.randn(50, 2)
    z, one = torch.zeros(50), torch.ones(50)
    u = mf.MeanVelocity(MLPConfig(hidden=16))
    v = TimeMLP(MLPConfig(hidden=16))
    s = TimeMLP(MLPConfig(hidden=16, n_scalars=2))
    with torch.no_grad():
        assert torch.allclose(live.few_step(u, x0, 1), x0 + u(x0, z, one), atol=1e-6)
        assert torch.allclose(live.few_step(v, x0, 1), x0 + v(x0, z), atol=1e-6)
        assert torch.allclose(live.few_step(s, x0, 1), x0 + s(x0, z, one), atol=1e-6)
        half = x0 + 0.5 * v(x0, z)
        assert torch.allclose(live.few_step(v, x0, 2), half + 0.5 * v(half, z + 0.5), atol=1e-6)
    assert [live.kind_of(m) for m in (u, v, s)] == ["meanflow", "euler", "shortcut"]
    assert live.kind_of(TimeMLP(MLPConfig(dim=64))) is None
    assert live.kind_of(TimeMLP(MLPConfig(n_classes=3))) is None
