"""flowviz.methods.meanflow against independent oracles: flow matching at r = t, finite
differences of du/dt, the closed-form mean velocity of a Gaussian-to-Gaussian flow, order
statistics of the time sampler, and a count of network calls."""

import math

import pytest
import torch
from torch import nn

from flowviz import data, metrics
from flowviz.exact import ExactField
from flowviz.methods import meanflow as mf
from flowviz.methods.fm import fm_loss
from flowviz.models import MLPConfig
from flowviz.train import OptimConfig, init_state, train_steps

M = torch.tensor([1.5, -0.5], dtype=torch.float64)  # target N(M, S^2 I), source N(0, I)
S = 0.3


def sig(t):
    return ((1 - t) ** 2 + (t * S) ** 2).sqrt()


def dsig(t):
    return (-(1 - t) + t * S**2) / sig(t)


def col(t):
    return t.reshape(-1, 1)


class GaussianMean(nn.Module):
    """The exact mean velocity of the flow N(0, I) -> N(M, S^2 I) on the linear path: the flow
    map is x_t = t M + sig_t z, so u(x, t, r) = (x_r - x) / (r - t) with x_r = r M + sig_r (x -
    t M) / sig_t, and v(x, t) = M + (sig'_t / sig_t)(x - t M)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x, t, r):
        self.calls += 1
        xr = col(r) * M + col(sig(r) / sig(t)) * (x - col(t) * M)
        return (xr - x) / col(r - t)

    def velocity(self, x, t):
        return M + col(dsig(t) / sig(t)) * (x - col(t) * M)


def tiny(scale=20.0, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return mf.MeanVelocity(MLPConfig(hidden=32, depth=2, emb=16, emb_scale=scale)).to(dtype)


def batch(n=64, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, 2, generator=g, dtype=dtype)
    x1 = torch.randn(n, 2, generator=g, dtype=dtype) * 0.5 + 1.0
    t = 0.1 + 0.7 * torch.rand(n, generator=g, dtype=dtype)
    r = t + (1 - t) * torch.rand(n, generator=g, dtype=dtype)
    return x0, x1, t, r


def test_target_is_the_fm_target_when_r_equals_t():
    u = tiny()
    x0, x1, t, _ = batch()
    xt = (1 - col(t)) * x0 + col(t) * x1
    tgt, term = mf.meanflow_target(u, xt, t, t, x1 - x0)
    assert torch.equal(tgt, x1 - x0) and term.abs().max() == 0
    # and the loss with r = t, no adaptive weight, is fm_loss of v(x, t) = u(x, t, t)
    loss, logs = mf.meanflow_loss(u, x0, x1, t, t.clone(), p=0.0)
    ref = fm_loss(u.velocity, x0, x1, t)
    assert torch.allclose(loss, ref, rtol=1e-12)
    assert math.isnan(logs["mse_mean"]) and math.isnan(logs["jvp"])


@pytest.mark.parametrize("scale", [20.0, 1000.0])
def test_jvp_matches_central_finite_differences(scale):
    u = tiny(scale)
    x0, x1, t, r = batch()
    xt, v = (1 - col(t)) * x0 + col(t) * x1, x1 - x0
    tgt, term = mf.meanflow_target(u, xt, t, r, v)
    eps = 1e-6
    with torch.no_grad():  # d/dt u(x_t, t, r) with dx_t/dt = v and r held fixed
        fd = (u(xt + eps * v, t + eps, r) - u(xt - eps * v, t - eps, r)) / (2 * eps)
    assert torch.allclose(term, col(r - t) * fd, rtol=1e-5, atol=1e-7 * fd.abs().max())
    assert torch.allclose(tgt, v + col(r - t) * fd, rtol=1e-5, atol=1e-7 * fd.abs().max())
    assert not tgt.requires_grad  # stop-gradient


def test_exact_mean_velocity_is_a_fixed_point_of_the_identity():
    """u = v + (r - t) du/dt holds for the closed-form u (sign and JVP direction are right):
    the target built from it with the marginal v returns it unchanged."""
    u = GaussianMean()
    _, _, t, r = batch(200)
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    tgt, _ = mf.meanflow_target(u, x, t, r, u.velocity(x, t))
    assert torch.allclose(tgt, u(x, t, r), atol=1e-10)
    # a wrong sign (x_r = x_t - (r - t) u convention) would not be a fixed point
    tgt_wrong = u.velocity(x, t) - (tgt - u.velocity(x, t))
    assert (tgt_wrong - u(x, t, r)).abs().max() > 1e-2


def test_model_tangent_replaces_the_pair_velocity_by_the_net_own_field():
    """tangent="model" (iMF): the JVP runs along u(x_t, t, t). For the closed-form u, whose
    u(x, t, t) is the marginal v, the target is the pair's v plus the exact (r - t) du/dt,
    u(x, t, r) - v(x, t), whatever the pair; finite differences of a random net along its own
    field agree."""

    class Exact(GaussianMean):
        def forward(self, x, t, r):
            same = col(r == t)
            return torch.where(same, self.velocity(x, t), super().forward(x, t, r + same[:, 0]))

    u = Exact()
    _, _, t, r = batch(200)
    g = torch.Generator().manual_seed(6)
    x = torch.randn(200, 2, generator=g, dtype=torch.float64)
    v_pair = torch.randn(200, 2, generator=g, dtype=torch.float64)  # any noisy pair velocity
    tgt, term = mf.meanflow_target(u, x, t, r, v_pair, "model")
    assert torch.allclose(term, u(x, t, r) - u.velocity(x, t), atol=1e-10)
    assert torch.allclose(tgt, v_pair + term)
    cond, _ = mf.meanflow_target(u, x, t, r, v_pair)  # the pair's own direction: not exact
    assert (cond - tgt).abs().max() > 1e-2

    net = tiny(seed=3)
    x0, x1, t, r = batch(seed=3)
    xt = (1 - col(t)) * x0 + col(t) * x1
    _, term = mf.meanflow_target(net, xt, t, r, x1 - x0, "model")
    eps = 1e-6
    with torch.no_grad():
        d = net(xt, t, t)
        fd = (net(xt + eps * d, t + eps, r) - net(xt - eps * d, t - eps, r)) / (2 * eps)
    assert torch.allclose(term, col(r - t) * fd, rtol=1e-5, atol=1e-7 * fd.abs().max())
    with pytest.raises(ValueError, match="tangent"):
        mf.MeanFlowConfig(tangent="marginal")


def test_mean_velocity_of_the_exact_field_is_recovered_by_integration():
    """ExactField for one data point widened by h = S is exactly N(M, S^2 I): the mean velocity
    read off its RK4 trajectories equals the closed form at every grid pair t < r."""
    field = ExactField(M[None].float(), h=S)
    x0 = torch.randn(50, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sol = mf.trajectory(field, x0, steps=80)
    traj, ts = sol.traj[::8], sol.ts[::8]
    table = mf.mean_velocity_table(traj, ts)
    u = GaussianMean()
    i, j = torch.triu_indices(len(ts), len(ts), offset=1)
    exact = u(traj[i].reshape(-1, 2), ts[i].repeat_interleave(50), ts[j].repeat_interleave(50))
    assert torch.allclose(table[i, j].reshape(-1, 2), exact, atol=1e-6)
    assert torch.isnan(table[j, i]).all()


def test_one_step_sampler_is_one_network_call_and_exact_for_the_exact_u():
    u = GaussianMean()
    z = torch.randn(1000, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    s = mf.sample(u, z, steps=1)
    assert u.calls == 1 and s.nfe == 1
    assert torch.allclose(s.x, M + S * z, atol=1e-12)  # the flow map of the exact flow
    u.calls = 0
    s4 = mf.sample(u, z, steps=4, return_traj=True)
    assert u.calls == 4 and s4.nfe == 4 and s4.traj.shape == (5, 1000, 2)
    assert torch.allclose(s4.x, M + S * z, atol=1e-12)  # exact jumps compose exactly


def test_identity_check_is_zero_for_the_exact_u_and_not_for_a_random_net():
    z = torch.randn(40, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    exact = mf.identity_check(GaussianMean(), z, n_times=9)
    err = exact["err"][~torch.isnan(exact["err"])]
    assert err.numel() == 9 * 8 // 2 and err.max() < 1e-5  # RK4, 32 steps
    rnd = mf.identity_check(tiny(), z, n_times=9)["rel"]
    assert rnd[~torch.isnan(rnd)].mean() > 0.05
    one = mf.one_step_error(GaussianMean(), z)
    assert one["err"].max() < 1e-6


def test_time_sampler_matches_order_statistics():
    n = 200_000
    g = torch.Generator().manual_seed(0)
    cfg = mf.MeanFlowConfig(time_sampler="uniform", frac_neq=1.0)
    t, r = mf.sample_times(n, cfg, g)
    assert (r >= t).all()
    # min and max of two uniforms: means 1/3 and 2/3 (std of the mean ~ 0.0005)
    assert abs(t.mean() - 1 / 3) < 0.003 and abs(r.mean() - 2 / 3) < 0.003
    cfg = mf.MeanFlowConfig(frac_neq=0.25, mu=0.4, sigma=1.0)
    t, r = mf.sample_times(n, cfg, g)
    # a fixed count of r != t rows, the last ones (fixed shapes, nothing read from the device)
    assert torch.equal(r[: n - n // 4], t[: n - n // 4]) and (r[n - n // 4:] > t[n - n // 4:]).all()
    assert mf.interval_rows(128, 0.25) == 32 and mf.interval_rows(10, 0.5) == 5
    # t = min of two logit-normals: P(t < 1/2) = 1 - Phi(mu / sigma)^2
    phi = 0.5 * (1 + math.erf(0.4 / math.sqrt(2)))
    assert abs((t < 0.5).double().mean() - (1 - phi**2)) < 0.005


def test_loss_with_a_given_row_count_is_the_counted_loss():
    """meanflow_loss(n_neq=k) (the objective's path: no read from the device) equals the loss
    that counts the r > t rows itself; rows with r > t before r = t rows are refused."""
    u = tiny()
    x0, x1, t, r = batch(64)
    r = torch.cat([t[:48], r[48:]])
    counted, logs = mf.meanflow_loss(u, x0, x1, t, r, n_buckets=3)
    given, logs2 = mf.meanflow_loss(u, x0, x1, t, r, n_buckets=3, n_neq=16)
    assert torch.equal(counted, given)
    assert all(torch.equal(logs[k], logs2[k]) or math.isnan(logs[k]) for k in logs)
    assert torch.isfinite(logs["mse_fm"]) and torch.isfinite(logs["mse_mean"])
    with pytest.raises(ValueError, match="last"):
        mf.meanflow_loss(u, x0.flip(0), x1.flip(0), t.flip(0), r.flip(0))


def test_loss_logs_per_time_bucket_average_to_the_batch():
    u = tiny()
    x0, x1, t, r = batch(256)
    loss, logs = mf.meanflow_loss(u, x0, x1, t, r, p=0.0, n_buckets=4)
    k = (t * 4).long()
    parts = [logs[f"mse_t{i}"] * (k == i).sum() for i in range(4) if (k == i).any()]
    assert torch.allclose(sum(parts) / len(t), loss)
    assert logs["jvp"] > 0 and logs["jvp_max"] >= logs["jvp"]


def test_short_training_is_stable_and_improves_one_step_samples():
    torch.manual_seed(0)
    u = mf.MeanVelocity(MLPConfig(hidden=64, depth=2, emb_scale=20.0))
    obj = mf.MeanFlowObjective(data.SAMPLERS["gaussian"], data.SAMPLERS["8gaussians"], 256,
                               mf.MeanFlowConfig(fm_warmup=50))
    st = init_state(u, obj, OptimConfig(steps=300, warmup=20, seed=0))
    x0, _ = data.sample("gaussian", 1000, seed=10)
    ref, _ = data.sample("8gaussians", 1000, seed=11)
    before = metrics.energy_distance(mf.sample(st.sampler_model, x0).x, ref)
    train_steps(st, 300)
    assert st.status == "done"
    after = metrics.energy_distance(mf.sample(st.sampler_model, x0).x, ref)
    assert after < 0.3 * before, (before, after)
    h = st.history
    assert all(math.isnan(e["mse_mean"]) for e in h if e["step"] < 50)  # warm start: FM only
    assert all(math.isfinite(e["mse_mean"]) and math.isfinite(e["jvp"]) for e in h[-10:])


def test_error_vs_interval_is_zero_for_the_exact_u_and_grows_for_the_tangent():
    field = ExactField(M[None].float(), h=S)
    x0 = torch.randn(30, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    exact = GaussianMean()
    tangent = lambda x, t, r: exact.velocity(x, t)  # noqa: E731  u := v(x_t, t), no averaging
    ds, err = mf.error_vs_interval({"exact": exact, "tangent": tangent}, field, x0, steps=10,
                                   substeps=4)
    assert torch.allclose(ds, torch.arange(1, 11, dtype=ds.dtype) / 10)
    assert err["exact"].max() < 1e-5
    # |v(x_t, t) - u(x_t, t, t + d)| is first order in d: it grows with the interval
    assert (err["tangent"][1:] > err["tangent"][:-1]).all() and err["tangent"][0] > 1e-3
