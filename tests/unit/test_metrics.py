"""flowviz.metrics: distances against closed forms, trajectory geometry on known curves."""

import math

import pytest
import torch
from scipy.stats import norm

from flowviz import metrics

F64 = torch.float64


def gen(seed):
    return torch.Generator().manual_seed(seed)


def e_abs_normal(m, s):
    """E|Z| for Z ~ N(m, s^2) (folded normal mean)."""
    return (s * math.sqrt(2 / math.pi) * math.exp(-m * m / (2 * s * s))
            + m * (1 - 2 * norm.cdf(-m / s)))


# ---------------------------------------------------------------------------- distances

@pytest.mark.parametrize("mu", [0.0, 0.5, 2.0])
def test_energy_distance_matches_closed_form_1d(mu):
    """ED(N(0,1), N(mu,1)) = 2E|X-Y| - E|X-X'| - E|Y-Y'|, X-Y ~ N(-mu, 2), X-X' ~ N(0, 2)."""
    want = 2 * e_abs_normal(mu, math.sqrt(2)) - 2 * e_abs_normal(0.0, math.sqrt(2))
    g = gen(int(10 * mu))
    reps = torch.tensor([metrics.energy_distance(torch.randn(800, 1, generator=g, dtype=F64),
                                                 mu + torch.randn(800, 1, generator=g, dtype=F64))
                         for _ in range(12)])
    se = float(reps.std()) / math.sqrt(len(reps))
    assert abs(float(reps.mean()) - want) <= 4 * se + 1e-4
    if mu == 0:  # unbiased: centred at 0, each replicate within a few sd of 0
        assert float(reps.abs().max()) < 5 * float(reps.std())


def test_energy_distance_same_law_is_noise_level_and_shift_is_large():
    g = gen(0)
    x, y = torch.randn(1000, 2, generator=g), torch.randn(1000, 2, generator=g)
    z = torch.randn(1000, 2, generator=g) + torch.tensor([1.0, 0.0])
    same, diff = metrics.energy_distance(x, y), metrics.energy_distance(x, z)
    assert abs(same) < 0.02  # sd of the U-statistic at n=1000 is ~ 5e-3
    assert diff > 10 * abs(same) and diff > 0.2
    assert metrics.energy_distance(x.reshape(1000, 1, 2), y.reshape(1000, 2, 1)) == \
        pytest.approx(same)  # images are flattened


def test_mmd_zero_for_equal_laws_positive_otherwise():
    g = gen(1)
    reps = torch.tensor([metrics.mmd(torch.randn(500, 2, generator=g),
                                     torch.randn(500, 2, generator=g)) for _ in range(8)])
    se = float(reps.std()) / math.sqrt(len(reps))
    assert abs(float(reps.mean())) < 4 * se + 1e-6  # unbiased: mean 0
    shifted = metrics.mmd(torch.randn(500, 2, generator=g),
                          torch.randn(500, 2, generator=g) + torch.tensor([0.0, 0.7]))
    assert shifted > 10 * float(reps.abs().max())
    wider = metrics.mmd(torch.randn(500, 2, generator=g), 2 * torch.randn(500, 2, generator=g))
    assert wider > 10 * float(reps.abs().max())


def test_mmd_closed_form_two_points():
    """x = {0, 0'} vs y = {a, a'} on the line: unbiased MMD^2 = sum_h 2 - 2 exp(-a^2 / 2h^2)."""
    x = torch.zeros(2, 1, dtype=F64)
    y = torch.full((2, 1), 1.5, dtype=F64)
    bw = (0.5, 1.0)
    want = sum(2 - 2 * math.exp(-1.5**2 / (2 * h * h)) for h in bw)
    assert metrics.mmd(x, y, bandwidths=bw) == pytest.approx(want, rel=1e-12)


def test_sliced_w2_between_shifted_gaussians():
    """W2 between projections on a unit theta is |theta . mu| (same variance), so
    SW2 = sqrt(E[(theta . mu)^2]) = |mu| / sqrt(2) in 2-D. Var of cos^2 is 1/8, hence the
    Monte-Carlo sd of SW2^2 over P directions is |mu|^2 sqrt(1/8/P) (0.14 for |mu| = 3, P = 512)."""
    g = gen(2)
    mu = torch.tensor([3.0, 0.0], dtype=F64)
    x = torch.randn(2000, 2, generator=g, dtype=F64)
    y = torch.randn(2000, 2, generator=g, dtype=F64) + mu
    want, p = 3 / math.sqrt(2), 512
    tol = 4 * 9 * math.sqrt(1 / 8 / p) / (2 * want) + 0.02  # delta method + finite-sample bias
    assert metrics.sliced_w2(x, y, n_proj=p) == pytest.approx(want, abs=tol)
    # unequal sizes go through quantiles
    assert metrics.sliced_w2(x[:700], y, n_proj=p) == pytest.approx(want, abs=tol + 0.03)
    assert metrics.sliced_w2(x, x) == 0.0
    # a pure translation of one sample: each projection shifts by theta . mu exactly
    assert metrics.sliced_w2(x, x + mu, n_proj=p, seed=5) == pytest.approx(want, abs=tol)
    # a direction-free case: a scaled copy c x of an isotropic sample has SW2 ~ |c - 1| sd
    assert metrics.sliced_w2(x, 3 * x, n_proj=64) == pytest.approx(2.0, rel=0.1)


def test_mode_coverage_on_a_sample_that_misses_modes():
    ang = torch.arange(8) * (2 * math.pi / 8)
    means = 3 * torch.stack([ang.cos(), ang.sin()], 1)
    g = gen(3)
    # 300 samples at modes 0, 1, 2 (100 each), 100 far from every mode
    x = torch.cat([means[k] + 0.1 * torch.randn(100, 2, generator=g) for k in (0, 1, 2)]
                  + [torch.full((100, 2), 50.0)])
    covered, near, frac = metrics.mode_coverage(x, means, radius=1.0)
    assert covered == pytest.approx(3 / 8)
    assert near == pytest.approx(0.75)
    assert torch.allclose(frac, torch.tensor([0.25, 0.25, 0.25, 0, 0, 0, 0, 0], dtype=F64))
    # a mode with too few samples (below min_frac of its fair share) is not covered
    x2 = torch.cat([means[0].expand(999, 2), means[1].expand(1, 2)])
    assert metrics.mode_coverage(x2, means[:2], radius=1.0, min_frac=0.2)[0] == 0.5


# ---------------------------------------------------------------------------- trajectories

def straight(x0, x1, ts, speed=lambda t: t):
    return x0[None] + speed(ts)[:, None, None] * (x1 - x0)[None]


def test_straight_lines_have_zero_straightness_and_curvature():
    g = gen(4)
    x0, x1 = torch.randn(20, 2, generator=g, dtype=F64), torch.randn(20, 2, generator=g, dtype=F64)
    ts = torch.linspace(0, 1, 51, dtype=F64)
    traj = straight(x0, x1, ts)
    assert metrics.straightness(traj, ts) < 1e-20
    assert metrics.mean_curvature(traj) < 1e-4  # arccos round-off: ~sqrt(2 eps) per vertex
    # the same straight lines at non-uniform speed t^2: no turning, but S = int (2t-1)^2 |d|^2
    ts = torch.linspace(0, 1, 1001, dtype=F64)
    traj = straight(x0, x1, ts, lambda t: t * t)
    want = float((x1 - x0).pow(2).sum(1).mean()) / 3
    assert metrics.straightness(traj, ts) == pytest.approx(want, rel=1e-5)
    assert metrics.mean_curvature(traj) < 1e-4  # arccos round-off: ~sqrt(2 eps) per vertex


@pytest.mark.parametrize("phi, r", [(math.pi / 2, 1.0), (math.pi, 2.0)])
def test_circle_arc_straightness_and_curvature(phi, r):
    """x(t) = r (cos phi t, sin phi t): |x'|^2 = r^2 phi^2 and chord^2 = 2 r^2 (1 - cos phi), so
    S = int |x' - chord|^2 dt = r^2 phi^2 - 2 r^2 (1 - cos phi); total turning angle = phi."""
    n = 2001
    ts = torch.linspace(0, 1, n, dtype=F64)
    traj = r * torch.stack([torch.cos(phi * ts), torch.sin(phi * ts)], -1)[:, None, :]
    want = r * r * (phi * phi - 2 * (1 - math.cos(phi)))
    assert metrics.straightness(traj, ts) == pytest.approx(want, rel=1e-5)
    # the inscribed polygon turns by phi/(n-1) at each of its n-2 interior vertices
    assert metrics.mean_curvature(traj) == pytest.approx(phi * (n - 2) / (n - 1), rel=1e-6)
    # backwards in time: same path, same numbers
    assert metrics.straightness(traj.flip(0), ts.flip(0)) == pytest.approx(want, rel=1e-5)


def test_transport_cost_closed_form():
    x0 = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    x1 = torch.tensor([[3.0, 4.0], [1.0, 2.0]])
    assert metrics.transport_cost(x0, x1) == pytest.approx((25 + 1) / 2)
    # independent N(0, I) -> N(mu, I) in D dims: E|x1 - x0|^2 = 2 D + |mu|^2
    g = gen(5)
    d, n = 3, 200_000
    mu = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    c = metrics.transport_cost(torch.randn(n, d, generator=g, dtype=F64),
                               torch.randn(n, d, generator=g, dtype=F64) + mu)
    want = 2 * d + float(mu @ mu)  # Var |x1 - x0|^2 = 2 * 2^2 * D + 4 * 2 |mu|^2
    assert c == pytest.approx(want, abs=4 * math.sqrt((8 * d + 8 * float(mu @ mu)) / n))


def _cross_bruteforce(p0, p1, q0, q1):
    """Solve p0 + s (p1 - p0) = q0 + u (q1 - q0) for (s, u); proper crossing iff both in (0, 1)."""
    a = torch.stack([p1 - p0, q0 - q1], -1)
    det = torch.linalg.det(a)
    if abs(det) < 1e-12:
        return False
    s, u = torch.linalg.solve(a, q0 - p0)
    return bool(0 < s < 1 and 0 < u < 1)


def test_crossing_fraction_hand_made_and_bruteforce():
    x0 = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    assert metrics.crossing_fraction(x0, torch.tensor([[1.0, 1.0], [1.0, 0.0]])) == 1.0  # an X
    assert metrics.crossing_fraction(x0, torch.tensor([[1.0, 0.0], [1.0, 1.0]])) == 0.0  # =
    assert metrics.crossing_fraction(x0[:1], x0[:1] + 1) == 0.0
    g = gen(6)
    n = 40
    a, b = torch.randn(n, 2, generator=g, dtype=F64), torch.randn(n, 2, generator=g, dtype=F64)
    brute = sum(_cross_bruteforce(a[i], b[i], a[j], b[j])
                for i in range(n) for j in range(i + 1, n))
    assert metrics.crossing_fraction(a, b) == pytest.approx(brute / (n * (n - 1) / 2))
    assert 0 < brute  # random pairs do cross
    # max_pairs: only the first pairs count
    assert metrics.crossing_fraction(a, b, max_pairs=10) == pytest.approx(
        sum(_cross_bruteforce(a[i], b[i], a[j], b[j]) for i in range(10)
            for j in range(i + 1, 10)) / 45)
