"""flowviz.paths: endpoints of the interpolants and velocities against finite differences."""

import math

import pytest
import torch

from flowviz.paths import PATHS, LinearPath, VPPath

G = torch.Generator().manual_seed(0)
X0 = torch.randn(64, 2, generator=G, dtype=torch.float64)
X1 = 3 * torch.randn(64, 2, generator=G, dtype=torch.float64) + 1


def test_linear_endpoints_and_midpoint():
    p = LinearPath()
    assert torch.equal(p.interpolate(X0, X1, 0.0), X0)
    assert torch.equal(p.interpolate(X0, X1, 1.0), X1)
    assert torch.allclose(p.interpolate(X0, X1, 0.5), (X0 + X1) / 2)
    t = torch.rand(64, generator=G, dtype=torch.float64)  # per-sample times broadcast
    assert torch.allclose(p.interpolate(X0, X1, t), X0 + t[:, None] * (X1 - X0))


def test_vp_endpoints_and_variance_preservation():
    p = VPPath()
    x = p.interpolate(X0, X1, torch.ones(64, dtype=torch.float64))
    # a_1 is floored at 1e-6 (so a'_t stays finite); the data point is recovered to that level
    assert torch.allclose(x, X1, rtol=0, atol=1e-5)
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    a, b, _, _ = p.coeffs(t)
    assert torch.allclose(a**2 + b**2, torch.ones_like(t), atol=1e-11)
    # t = 0: data weight exp(-(beta_min + beta_max) / 4) (the log of alpha_bar(1) halved)
    assert float(b[0]) == pytest.approx(math.exp(-(0.1 + 20) / 4), rel=1e-12)
    assert float(b[0]) < 0.01 and float(a[0]) > 0.9999
    assert (b[1:] > b[:-1]).all()  # data weight grows monotonically towards t = 1


@pytest.mark.parametrize("path", [LinearPath(), VPPath(), VPPath(beta_min=0.5, beta_max=5.0)])
@pytest.mark.parametrize("t", [0.05, 0.3, 0.5, 0.8, 0.95])
def test_velocity_is_time_derivative_of_interpolant(path, t):
    """Central finite difference (x_{t+h} - x_{t-h}) / 2h, error O(h^2) ~ 1e-10 at h=1e-5."""
    h = 1e-5
    tt = torch.full((64,), t, dtype=torch.float64)
    fd = (path.interpolate(X0, X1, tt + h) - path.interpolate(X0, X1, tt - h)) / (2 * h)
    v = path.velocity(X0, X1, tt)
    assert torch.allclose(v, fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("path", [LinearPath(), VPPath()])
def test_coeff_derivatives_match_finite_differences(path):
    t = torch.linspace(0.02, 0.98, 49, dtype=torch.float64)
    h = 1e-6
    a, b, da, db = path.coeffs(t)
    ap, bp, _, _ = path.coeffs(t + h)
    am, bm, _, _ = path.coeffs(t - h)
    assert torch.allclose(da, (ap - am) / (2 * h), rtol=1e-5, atol=1e-7)
    assert torch.allclose(db, (bp - bm) / (2 * h), rtol=1e-5, atol=1e-7)


def test_image_shaped_broadcast_and_registry():
    x0 = torch.randn(4, 3, 2, 2, generator=G)
    x1 = torch.randn(4, 3, 2, 2, generator=G)
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    for p in PATHS.values():
        xt = p.interpolate(x0, x1, t)
        assert xt.shape == x0.shape and p.velocity(x0, x1, t).shape == x0.shape
    lin = PATHS["linear"].interpolate(x0, x1, t)
    assert torch.allclose(lin[1], 0.75 * x0[1] + 0.25 * x1[1])
    assert PATHS["vp"] == VPPath()
