"""flowviz.solvers: convergence orders, NFE accounting, adaptive accuracy, trajectories."""

import math

import pytest
import torch

from flowviz.solvers import ADAPTIVE, FIXED, solve, steps_for_nfe

F64 = torch.float64
EVALS = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}  # Butcher tableau stage counts


class Counter:
    """dx/dt = cos(t) x  (solution x0 exp(sin t)); time-dependent, so misplaced stage times show."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x, t):
        self.calls += 1
        assert t.shape == (x.shape[0],)
        return torch.cos(t).reshape(-1, *[1] * (x.dim() - 1)) * x


def exact(x0, t0, t1):
    return x0 * math.exp(math.sin(t1) - math.sin(t0))


X0 = torch.tensor([[1.0, -0.5], [0.3, 2.0]], dtype=F64)


@pytest.mark.parametrize("method, order", [("euler", 1), ("midpoint", 2), ("heun", 2), ("rk4", 4)])
def test_order_of_convergence(method, order):
    errs = []
    for n in (10, 20, 40):
        x = solve(Counter(), X0, method, n).x
        errs.append(float((x - exact(X0, 0, 1)).abs().max()))
    for e1, e2 in zip(errs, errs[1:], strict=False):
        assert math.log2(e1 / e2) == pytest.approx(order, abs=0.3)


def test_rotation_field_rk4_keeps_the_circle():
    """dx/dt = J x rotates by angle t; RK4 error at 20 steps is ~ (1/20)^4 / 120 ~ 1e-7."""
    def rot(x, t):
        return torch.stack([-x[:, 1], x[:, 0]], 1)

    x0 = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=F64)
    c, s = math.cos(1), math.sin(1)
    want = x0 @ torch.tensor([[c, s], [-s, c]], dtype=F64)
    assert torch.allclose(solve(rot, x0, "rk4", 20).x, want, atol=1e-6)


@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("steps", [1, 3, 8])
def test_nfe_counts(method, steps):
    f = Counter()
    s = solve(f, X0, method, steps)
    assert s.nfe == f.calls == steps * EVALS[method]
    assert steps_for_nfe(method, steps * EVALS[method]) == steps
    assert steps_for_nfe(method, 1) == 1  # at least one step


@pytest.mark.parametrize("method", ADAPTIVE)
def test_adaptive_accuracy_and_nfe(method):
    """Tighter tolerance: more evaluations, smaller error. (torchdiffeq's bosh3 controls its local
    error loosely, ~50x the tolerance globally, so the bound below is 2e-5 at tol 1e-7.)"""
    nfes, errs = [], []
    for tol in (1e-3, 1e-5, 1e-7):
        f = Counter()
        s = solve(f, X0, method, rtol=tol, atol=tol)
        assert s.nfe == f.calls > 0
        nfes.append(s.nfe)
        errs.append(float(((s.x - exact(X0, 0, 1)) / exact(X0, 0, 1)).abs().max()))
    assert nfes[0] < nfes[1] < nfes[2]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 2e-5 and errs[0] < 1e-2


def test_dopri5_reaches_tolerance():
    s = solve(Counter(), X0, "dopri5", rtol=1e-6, atol=1e-6)
    err = (s.x - exact(X0, 0, 1)).abs()
    assert (err <= 1e-6 * 10 * (1 + exact(X0, 0, 1).abs())).all()  # within ~10x the local tol


@pytest.mark.parametrize("method", ["euler", "rk4", "dopri5"])
def test_return_traj_shapes_and_values(method):
    x0 = torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    s = solve(Counter(), x0, method, steps=16, return_traj=True, n_save=9, rtol=1e-7, atol=1e-7)
    t_len = 17 if method in FIXED else 9
    assert s.traj.shape == (t_len, 5, 2) and s.ts.shape == (t_len,)
    assert torch.allclose(s.ts, torch.linspace(0, 1, t_len, dtype=F64))
    assert torch.equal(s.traj[0], x0) and torch.equal(s.traj[-1], s.x)
    tol = {"euler": 0.1, "rk4": 1e-5, "dopri5": 1e-5}[method]
    for i, t in enumerate(s.ts.tolist()):
        assert torch.allclose(s.traj[i], exact(x0, 0, t), atol=tol)
    no = solve(Counter(), x0, method, steps=16)
    assert no.traj is None and no.ts is None


@pytest.mark.parametrize("method", ["midpoint", "rk4", "dopri5"])
def test_backward_integration_inverts_forward(method):
    def f(x, t):  # nonlinear, time-dependent
        return torch.stack([torch.sin(x[:, 1]) + t, -x[:, 0] * t], 1)

    x0 = torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    kw = dict(steps=200, rtol=1e-9, atol=1e-9)
    fwd = solve(f, x0, method, **kw)
    back = solve(f, fwd.x, method, t0=1.0, t1=0.0, return_traj=True, **kw)
    assert torch.allclose(back.x, x0, atol=1e-6)
    assert back.ts[0] == 1 and back.ts[-1] == 0


@pytest.mark.parametrize("method", ["heun", "rk4", "dopri5"])
def test_image_shaped_state(method):
    x0 = torch.randn(4, 3, 4, 4, generator=torch.Generator().manual_seed(0), dtype=F64)
    s = solve(Counter(), x0, method, steps=20, return_traj=True, n_save=5)
    assert s.x.shape == (4, 3, 4, 4) and s.traj.shape[1:] == (4, 3, 4, 4)
    assert torch.allclose(s.x, exact(x0, 0, 1), rtol=1e-3, atol=1e-4)  # heun: O(h^2) ~ 4e-4


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown"):
        solve(Counter(), X0, "leapfrog")
