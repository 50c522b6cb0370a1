"""flowviz.exact: the closed-form marginal field against independent oracles.

Oracles: (1) Monte Carlo straight from the definition E[x1 - x0 | x_t in a small ball around x];
(2) self-normalised importance sampling over x1 draws with the Gaussian likelihood; (3) the
continuity equation d/dt p_t + div(p_t v) = 0 with p_t written directly as a Gaussian mixture;
(4) autograd of log p_t for the score; (5) Gaussian-to-Gaussian and single-point closed forms.
Tolerances come from the Monte Carlo standard error (batch means) or the finite-difference order.
"""

import math

import pytest
import torch

from flowviz import metrics
from flowviz.exact import ExactField, vp_pf_ode_drift
from flowviz.paths import LinearPath, VPPath
from flowviz.solvers import solve

F64 = torch.float64
Y = torch.tensor([[2.0, 1.0], [-1.5, 2.0], [0.0, -2.5], [2.5, -1.0], [-2.0, -0.5]], dtype=F64)
QUERIES = torch.tensor([[0.5, 0.4], [1.0, -0.5], [-0.3, 0.2], [-1.5, 1.0]], dtype=F64)


def log_p_t(x, t, data, path, sigma, h=0.0):
    """log of (1/N) sum_i N(x; b_t y_i, (a_t^2 sigma^2 + b_t^2 h^2) I), written out directly:
    x_t = a x0 + b (y_i + h e) is a sum of independent Gaussians given the component i."""
    a, b, _, _ = path.coeffs(torch.as_tensor(t, dtype=F64))
    var = (a * sigma) ** 2 + (b * h) ** 2
    d = x.shape[-1]
    sq = ((x[:, None, :] - b * data[None]) ** 2).sum(-1)
    logn = -sq / (2 * var) - 0.5 * d * torch.log(2 * math.pi * var)
    return torch.logsumexp(logn, dim=1) - math.log(len(data))


# ---------------------------------------------------------------------------- Monte Carlo

@pytest.mark.parametrize("t, h", [(0.3, 0.0), (0.5, 0.0), (0.5, 0.4)])
def test_velocity_matches_ball_monte_carlo_of_definition(t, h):
    """E[x1 - x0 | |x_t - x| < r] from joint samples; bias O(r^2) ~ 1e-3, far below the SE.
    h > 0: x1 ~ N(y_i, h^2 I) (the widened target)."""
    g = torch.Generator().manual_seed(int(10 * t + 100 * h))
    m, r = 2_000_000, 0.05
    x0 = torch.randn(m, 2, generator=g, dtype=F64)
    x1 = Y[torch.randint(0, len(Y), (m,), generator=g)] + h * torch.randn(m, 2, generator=g,
                                                                          dtype=F64)
    xt = (1 - t) * x0 + t * x1
    field = ExactField(Y, h=h)
    for x in (QUERIES[0], QUERIES[2], t * Y[1] + 0.2):  # where x_t has mass
        keep = (xt - x).norm(dim=1) < r
        u = (x1 - x0)[keep]
        assert len(u) > 1000
        se = u.std(0) / math.sqrt(len(u))
        v = field(x[None], t)[0]
        assert ((u.mean(0) - v).abs() <= 4 * se + 5e-3).all(), (x, u.mean(0), v, se)
        # conditional covariance (trace); the ball adds E|X - x|^2 / (1-t)^2 = r^2/2/(1-t)^2
        dev = (u - u.mean(0)).pow(2).sum(1)
        tr_mc = dev.mean() - (r**2 / 2) / (1 - t) ** 2
        tr = field.velocity_cov(x[None], t)[0].trace()
        assert abs(tr_mc - tr) <= 4 * dev.std() / math.sqrt(len(u)) + 1e-2


def _snis(x, t, path, sigma, g, m=200_000, k=20):
    """Self-normalised IS over x1 ~ U(data): weight N(x; b y, a^2 sigma^2 I), then x0 is fixed by
    x = a x0 + b x1. Returns batch-means estimates (mean, SE) of E[v] and tr Cov[v]."""
    a, b, da, db = (float(c) for c in path.coeffs(torch.tensor(t, dtype=F64)))
    means, trs = [], []
    for _ in range(k):
        y = Y[torch.randint(0, len(Y), (m // k,), generator=g)]
        logw = -((x - b * y) ** 2).sum(1) / (2 * a * a * sigma * sigma)
        w = torch.softmax(logw, 0)
        x0 = (x - b * y) / (a * sigma)  # standard-normal draw; the source sample is sigma * x0
        v = da * sigma * x0 + db * y
        mv = (w[:, None] * v).sum(0)
        means.append(mv)
        trs.append((w * (v - mv).pow(2).sum(1)).sum())
    means, trs = torch.stack(means), torch.stack(trs)
    return means.mean(0), means.std(0) / math.sqrt(k), trs.mean(), trs.std() / math.sqrt(k)


@pytest.mark.parametrize("path, sigma", [(LinearPath(), 1.0), (LinearPath(), 0.7), (VPPath(), 1.0)])
@pytest.mark.parametrize("t", [0.2, 0.6, 0.9])
def test_velocity_and_cov_match_importance_sampling(path, sigma, t):
    g = torch.Generator().manual_seed(1)
    field = ExactField(Y, path=path, sigma=sigma)
    for x in QUERIES:
        mv, se, tr_mc, tr_se = _snis(x, t, path, sigma, g)
        v = field(x[None], t)[0]
        assert ((mv - v).abs() <= 4 * se + 1e-9).all(), (x, mv, v, se)
        tr = field.velocity_cov(x[None], t)[0].trace()
        assert abs(tr - tr_mc) <= 4 * tr_se + 1e-9


# ---------------------------------------------------------------------------- PDE / autograd

WIDE = [(LinearPath(), 1.0, 0.0), (LinearPath(), 0.7, 0.0), (VPPath(), 1.0, 0.0),
        (LinearPath(), 0.7, 0.3), (VPPath(), 1.0, 0.3)]


@pytest.mark.parametrize("path, sigma, wide, t", [
    *[(*case, t) for case in WIDE for t in (0.1, 0.5, 0.85)],
    (LinearPath(), 0.7, 0.3, 1 - 1e-5),  # a widened target is smooth up to t = 1
])
def test_continuity_equation(path, sigma, wide, t):
    """d/dt p_t(x) + div(p_t v)(x) = 0 by central differences (error O(h^2), h = 1e-5)."""
    field = ExactField(Y, path=path, sigma=sigma, h=wide)
    b = float(path.coeffs(torch.tensor(t))[1])
    x = torch.cat([QUERIES, b * Y + torch.tensor([0.2, -0.1], dtype=F64)])  # where p_t lives
    h = 1e-5

    def p(x_, t_):
        return log_p_t(x_, t_, Y, path, sigma, wide).exp()

    dpdt = (p(x, t + h) - p(x, t - h)) / (2 * h)
    div = torch.zeros(len(x), dtype=F64)
    for d in range(2):
        e = torch.zeros(2, dtype=F64)
        e[d] = h
        flux_p = p(x + e, t) * field(x + e, t)[:, d]
        flux_m = p(x - e, t) * field(x - e, t)[:, d]
        div += (flux_p - flux_m) / (2 * h)
    tol = 1e-6 * (dpdt.abs() + div.abs()) + 1e-9 * dpdt.abs().max()  # FD error + round-off
    assert ((dpdt + div).abs() <= tol).all()
    assert (dpdt.abs() > 1e-4).sum() >= 4  # the check is not vacuous


@pytest.mark.parametrize("path, sigma, wide", WIDE)
@pytest.mark.parametrize("t", [0.0, 0.3, 0.7, 0.95])
def test_score_is_grad_log_density(path, sigma, wide, t):
    field = ExactField(Y, path=path, sigma=sigma, h=wide)
    x = torch.cat([QUERIES, torch.tensor([[6.0, -5.0]], dtype=F64)]).requires_grad_(True)
    (grad,) = torch.autograd.grad(log_p_t(x, t, Y, path, sigma, wide).sum(), x)
    assert torch.allclose(field.score(x.detach(), t), grad, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("wide", [0.0, 0.3])
@pytest.mark.parametrize("t", [0.0, 0.2, 0.5, 0.8, 0.95])
def test_vp_pf_ode_drift_equals_vp_velocity(t, wide):
    field = ExactField(Y, path=VPPath(), h=wide)
    x = torch.cat([QUERIES, 3 * torch.randn(20, 2, generator=torch.Generator().manual_seed(0),
                                            dtype=F64)])
    assert torch.allclose(vp_pf_ode_drift(field, x, t), field(x, t), rtol=1e-7, atol=1e-7)
    tt = torch.full((len(x),), t, dtype=F64)
    assert torch.allclose(vp_pf_ode_drift(field, x, tt), field(x, tt), rtol=1e-7, atol=1e-7)


# ---------------------------------------------------------------------------- closed forms, edges

def test_t0_is_mean_minus_x_and_endpoints_are_finite():
    field = ExactField(Y)
    x = torch.tensor([[0.0, 0.0], [1e3, -1e3], [-50.0, 7.0], *Y.tolist()], dtype=F64)
    # at t = 0, x_t = x0 is independent of x1: E[x1 - x0 | x0 = x] = mean(data) - x
    assert torch.allclose(field(x, 0.0), Y.mean(0) - x, atol=1e-10)
    for path, wide in ((LinearPath(), 0.0), (VPPath(), 0.0), (LinearPath(), 0.3), (VPPath(), 0.3)):
        f = ExactField(Y, path=path, h=wide)
        for t in (0.0, 0.5, 0.999, 1.0):
            for fn in (f.velocity, f.score, f.velocity_cov):
                assert torch.isfinite(fn(x, t)).all(), (path, t, fn.__name__)
    # far from the data at t = 1/2, the posterior sits on the nearest y_i: v = (y_i - x)/(1 - t)
    far = torch.tensor([[1e3, -1e3]], dtype=F64)
    near = Y[(Y - far / 0.5).norm(dim=1).argmin()]
    assert torch.allclose(field(far, 0.5)[0], (near - far[0]) / 0.5, rtol=1e-10)


@pytest.mark.parametrize("t", [0.0, 0.25, 0.5, 0.9, 0.99])
def test_single_point_gives_straight_line_field(t):
    y = torch.tensor([[1.5, -0.5]], dtype=F64)
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0), dtype=F64) * 3
    assert torch.allclose(ExactField(y)(x, t), (y - x) / (1 - t), rtol=1e-12, atol=1e-12)
    assert torch.allclose(ExactField(y).velocity_cov(x, t), torch.zeros(32, 2, 2, dtype=F64))


def test_single_point_flow_is_straight_and_lands_on_the_point():
    y = torch.tensor([[1.5, -0.5]])
    x0 = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    s = solve(ExactField(y), x0, "euler", 50, return_traj=True)
    assert torch.allclose(s.x, y.expand(50, 2), atol=1e-5)
    assert metrics.straightness(s.traj, s.ts) < 1e-8
    assert metrics.mean_curvature(s.traj) < 1e-2


def test_gaussian_data_approaches_gaussian_to_gaussian_closed_form():
    """Data N(mu, s^2 I): x_t ~ N(t mu, ((1-t)^2 + t^2 s^2) I) jointly Gaussian with x1 - x0, so
    E[x1 - x0 | x_t = x] = mu + (t s^2 - (1 - t)) / ((1 - t)^2 + t^2 s^2) (x - t mu)."""
    g = torch.Generator().manual_seed(0)
    mu, s = torch.tensor([2.0, -1.0], dtype=F64), 0.5
    errs = {}
    for n in (2_000, 100_000):
        f = ExactField(mu + s * torch.randn(n, 2, generator=g, dtype=F64))
        err = 0.0
        for t in (0.2, 0.5, 0.8):
            sd = math.sqrt((1 - t) ** 2 + t * t * s * s)
            x = t * mu + sd * torch.randn(16, 2, generator=g, dtype=F64)
            v = mu + (t * s * s - (1 - t)) / sd**2 * (x - t * mu)
            err = max(err, float((f(x, t) - v).abs().max()))
        errs[n] = err
    assert errs[100_000] < 0.03
    assert errs[100_000] < errs[2_000] / 3  # Monte Carlo rate: sqrt(50) ~ 7


@pytest.mark.parametrize("path", [LinearPath(), VPPath()])
def test_widened_single_point_is_the_gaussian_closed_form(path):
    """One point mu widened by h: the target is exactly N(mu, h^2 I). x_t and v = a' x0 + b' x1
    are jointly Gaussian: E[v | x] = b' mu + Cov(v, x_t) / Var(x_t) (x - b mu), with
    Cov = a' a sigma^2 + b' b h^2 and Var = a^2 sigma^2 + b^2 h^2; Cov[v | x] = (Var(v) - Cov^2 /
    Var(x_t)) I. Holds on the whole of [0, 1] for the linear path."""
    mu, h, sigma = torch.tensor([[2.0, -1.0]], dtype=F64), 0.5, 0.8
    f = ExactField(mu, path=path, sigma=sigma, h=h)
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=F64) * 2
    for t in (0.0, 0.3, 0.7, 0.99) + ((1.0,) if isinstance(path, LinearPath) else ()):
        a, b, da, db = (float(c) for c in path.coeffs(torch.tensor(t, dtype=F64)))
        var = a * a * sigma**2 + b * b * h * h
        cov = da * a * sigma**2 + db * b * h * h
        want = db * mu + cov / var * (x - b * mu)
        assert torch.allclose(f(x, t), want, rtol=1e-10, atol=1e-10), t
        k = da * da * sigma**2 + db * db * h * h - cov * cov / var
        assert torch.allclose(f.velocity_cov(x, t), k * torch.eye(2, dtype=F64).expand(16, 2, 2),
                              rtol=1e-8, atol=1e-10)
        assert torch.allclose(f.score(x, t), -(x - b * mu) / var, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("wide", [0.0, 0.4])
@pytest.mark.parametrize("path", [LinearPath(), VPPath()])
def test_pairs_through_a_point(path, wide):
    """Each returned pair's path passes through x at t, weights are the posterior computed from
    Gaussian densities, and the weighted pair velocities average to v*(x, t)."""
    f = ExactField(Y, path=path, h=wide, sigma=0.9)
    x, t = QUERIES[0], 0.6
    w, x0, x1 = f.pairs_through(x, t)
    a, b, da, db = (float(c) for c in path.coeffs(torch.tensor(t, dtype=F64)))
    assert torch.allclose(a * x0 + b * x1, x.expand(len(Y), 2), atol=1e-12)
    logw = -((x - b * Y) ** 2).sum(1) / (2 * (a * a * 0.81 + b * b * wide * wide))
    assert torch.allclose(w, torch.softmax(logw, 0), atol=1e-12)
    v = (w[:, None] * (da * x0 + db * x1)).sum(0)
    assert torch.allclose(v, f(x[None], t)[0], atol=1e-10)
    if wide == 0:
        assert torch.equal(x1, Y)


def test_sample_target_is_the_widened_mixture():
    f = ExactField(Y, h=0.5)
    z = f.sample_target(200_000, torch.Generator().manual_seed(0)).double()
    n = len(z)
    assert z.shape == (n, 2)
    mean, cov = Y.mean(0), torch.cov(Y.T, correction=0) + 0.25 * torch.eye(2, dtype=F64)
    assert torch.allclose(z.mean(0), mean, atol=4 * float(cov.diagonal().max().sqrt()) / n**0.5)
    assert torch.allclose(torch.cov(z.T), cov, atol=0.05)
    z0 = ExactField(Y).sample_target(100, torch.Generator().manual_seed(0)).double()
    assert torch.cdist(z0, Y).min(1).values.max() < 1e-6  # h = 0: the data points themselves


def test_exact_flow_transports_noise_to_the_empirical_data():
    """The marginal field pushes N(0, I) onto p_data: each y_i receives ~ 1/N of the samples."""
    n = 2000
    x0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    x1 = solve(ExactField(Y), x0, "euler", 200).x
    d, idx = torch.cdist(x1, Y).min(1)
    assert (d < 0.05).double().mean() > 0.99
    counts = torch.bincount(idx, minlength=len(Y)).double()
    sd = math.sqrt(n * 0.2 * 0.8)  # binomial
    assert ((counts - n / len(Y)).abs() < 4 * sd).all(), counts


def test_time_tensor_scalar_and_image_shapes_agree():
    imgs = torch.randn(7, 1, 2, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    f_img, f_flat = ExactField(imgs), ExactField(imgs.flatten(1))
    x = torch.randn(5, 1, 2, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    t = torch.tensor([0.0, 0.2, 0.5, 0.7, 0.9], dtype=F64)
    v = f_img(x, t)
    assert v.shape == x.shape
    assert torch.allclose(v.flatten(1), f_flat(x.flatten(1), t))
    for i in range(5):
        assert torch.allclose(v[i], f_img(x[i:i + 1], float(t[i]))[0], rtol=1e-12, atol=1e-12)
    assert f_img(x.float(), 0.5).dtype == torch.float32
