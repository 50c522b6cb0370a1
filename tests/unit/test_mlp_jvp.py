"""TimeMLP's hand-written forward mode against torch.func.jvp (the oracle), and MeanFlow's target
and loss through it against the same quantities through torch.func.jvp."""

import pytest
import torch

from flowviz.methods import meanflow as mf
from flowviz.models import MLPConfig, TimeMLP


def rand_like_rows(n, g, dtype):
    return torch.rand(n, generator=g, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cfg,shape", [
    (MLPConfig(n_scalars=1), (64, 2)),
    (MLPConfig(hidden=64, depth=2, n_scalars=2, emb_scale=20.0), (64, 2)),
    (MLPConfig(dim=8, hidden=32, depth=1, n_scalars=2, emb=16, n_classes=3), (32, 2, 4)),
])
def test_forward_mode_equals_torch_func_jvp(cfg, shape, dtype):
    torch.manual_seed(1)
    net = TimeMLP(cfg).to(dtype)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(shape, generator=g, dtype=dtype)
    dx = torch.randn(shape, generator=g, dtype=dtype)
    s = [rand_like_rows(shape[0], g, dtype) for _ in range(cfg.n_scalars)]
    ds = [torch.randn(shape[0], generator=g, dtype=dtype) for _ in range(cfg.n_scalars)]
    label = torch.randint(0, cfg.n_classes + 1, (shape[0],), generator=g) if cfg.n_classes \
        else None
    with torch.no_grad():
        val, tan = net.jvp(x, s, dx, ds, label=label)
    ref_val, ref_tan = torch.func.jvp(lambda x_, *s_: net(x_, *s_, label=label), (x, *s),
                                      (dx, *ds))
    tol = 1e-5 * max(1.0, ref_tan.abs().max().item())
    assert val.shape == tan.shape == x.shape
    assert torch.allclose(val, ref_val, rtol=1e-5, atol=1e-5)
    assert torch.allclose(tan, ref_tan, rtol=1e-5, atol=tol)
    assert tan.abs().max() > 1e-3  # a tangent that is not trivially zero


def test_forward_mode_is_linear_in_the_tangent():
    torch.manual_seed(0)
    net = TimeMLP(MLPConfig(hidden=32, n_scalars=2)).double()
    x, t = torch.randn(16, 2, dtype=torch.float64), torch.rand(16, dtype=torch.float64)
    d1, d2 = torch.randn(16, 2, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)
    one, zero = torch.ones_like(t), torch.zeros_like(t)
    _, a = net.jvp(x, (t, t), d1, (one, zero))
    _, b = net.jvp(x, (t, t), d2, (zero, one))
    _, c = net.jvp(x, (t, t), 2 * d1 - 3 * d2, (2 * one, -3 * one))
    assert torch.allclose(c, 2 * a - 3 * b, atol=1e-10)


class FuncJVP(torch.nn.Module):
    """The same u, but not a MeanVelocity: meanflow_target takes the torch.func.jvp path."""

    def __init__(self, u):
        super().__init__()
        self.u = u

    def forward(self, x, t, r):
        return self.u(x, t, r)


@pytest.mark.parametrize("tangent", mf.TANGENTS)
def test_meanflow_target_and_loss_unchanged_vs_torch_func(tangent):
    torch.manual_seed(3)
    u = mf.MeanVelocity(MLPConfig(hidden=64, depth=3, emb_scale=20.0))
    ref = FuncJVP(u)
    g = torch.Generator().manual_seed(4)
    n = 256
    x0, x1 = torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g) * 0.5 + 1
    t, r = mf.sample_times(n, mf.MeanFlowConfig(frac_neq=0.5, time_sampler="uniform"), g)
    xt, v = (1 - t[:, None]) * x0 + t[:, None] * x1, x1 - x0
    tgt, term = mf.meanflow_target(u, xt, t, r, v, tangent)
    tgt_ref, term_ref = mf.meanflow_target(ref, xt, t, r, v, tangent)
    assert term.abs().max() > 1e-3
    assert torch.allclose(tgt, tgt_ref, atol=1e-5) and torch.allclose(term, term_ref, atol=1e-5)
    k = mf.interval_rows(n, 0.5)
    loss, logs = mf.meanflow_loss(u, x0, x1, t, r, n_neq=k, tangent=tangent)
    grads = torch.autograd.grad(loss, list(u.parameters()))
    loss_ref, logs_ref = mf.meanflow_loss(ref, x0, x1, t, r, n_neq=k, tangent=tangent)
    grads_ref = torch.autograd.grad(loss_ref, list(u.parameters()))
    assert torch.allclose(loss, loss_ref, rtol=1e-5)
    for name in ("mse_fm", "mse_mean", "jvp", "jvp_max"):
        assert torch.allclose(logs[name], logs_ref[name], rtol=1e-5), name
    for a, b in zip(grads, grads_ref, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
