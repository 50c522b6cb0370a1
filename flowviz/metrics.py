"""Distances between sample sets and the geometry of trajectories and couplings.

Distribution distances take x (N, D) and y (M, D) (flatten images first). Trajectory metrics
take traj of shape (T, N, D) on times ts (T,). Straightness and transport cost follow Liu et al.
2022 (rectified flow, §2/§3 of the article).
"""

from __future__ import annotations

import torch


def _flat(x):
    return x.flatten(1).double()


def _mean_offdiag(k: torch.Tensor) -> torch.Tensor:
    n = k.shape[0]
    return (k.sum() - k.diagonal().sum()) / (n * (n - 1))


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased estimate of 2 E|X - Y| - E|X - X'| - E|Y - Y'| (zero iff equal laws).

    Uses U-statistics for the within-sample terms, so it is centred at 0 for equal laws and can
    come out slightly negative; that is noise, not an error.
    """
    x, y = _flat(x), _flat(y)
    xy = torch.cdist(x, y).mean()
    return float(2 * xy - _mean_offdiag(torch.cdist(x, x)) - _mean_offdiag(torch.cdist(y, y)))


def ed_noise_floor(sample, n: int = 2000, reps: int = 3, seed: int = 123) -> float:
    """The sampling noise of ``energy_distance`` between two n-point sets: the RMS of the
    distance between independent n-point sets of one law, ``sample(n, generator)``. A distance
    at or below it cannot be told from zero (the unbiased estimate is centred at 0)."""
    g = torch.Generator().manual_seed(seed)
    eds = torch.tensor([energy_distance(sample(n, g), sample(n, g)) for _ in range(reps)])
    return float(eds.pow(2).mean().sqrt())


def mmd(x: torch.Tensor, y: torch.Tensor, bandwidths=(0.1, 0.3, 1.0, 3.0)) -> float:
    """Unbiased squared MMD with a sum of Gaussian kernels exp(-|a-b|^2 / (2 h^2))."""
    x, y = _flat(x), _flat(y)

    def k(a, b):
        d2 = torch.cdist(a, b).pow(2)
        return sum(torch.exp(-d2 / (2 * h * h)) for h in bandwidths)

    return float(_mean_offdiag(k(x, x)) + _mean_offdiag(k(y, y)) - 2 * k(x, y).mean())


def sliced_w2(x: torch.Tensor, y: torch.Tensor, n_proj: int = 256, seed: int = 0) -> float:
    """Sliced Wasserstein-2 distance: sqrt of the mean over random directions of W2^2 in 1-D.

    Sample sets of unequal size are compared through matched quantiles.
    """
    x, y = _flat(x), _flat(y)
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(x.shape[1], n_proj, generator=g, dtype=torch.float64).to(x.device)
    theta = theta / theta.norm(dim=0, keepdim=True)
    px, py = (x @ theta).sort(0).values, (y @ theta).sort(0).values
    q = torch.linspace(0, 1, max(len(x), len(y)), dtype=torch.float64, device=x.device)
    qx = torch.quantile(px, q, dim=0) if len(x) != len(q) else px
    qy = torch.quantile(py, q, dim=0) if len(y) != len(q) else py
    return float((qx - qy).pow(2).mean().sqrt())


def mode_coverage(x: torch.Tensor, means: torch.Tensor, radius: float, min_frac: float = 0.2):
    """For a mixture with component ``means``: which modes the samples cover.

    A sample belongs to its nearest mode if within ``radius``; a mode counts as covered when it
    holds at least ``min_frac`` of its fair share (1/K). Returns (fraction of modes covered,
    fraction of samples within radius of some mode, per-mode sample fractions).
    """
    d = torch.cdist(_flat(x), _flat(means))
    dmin, k = d.min(1)
    near = dmin <= radius
    frac = torch.bincount(k[near], minlength=len(means)).double() / len(x)
    covered = (frac >= min_frac / len(means)).double().mean()
    return float(covered), float(near.double().mean()), frac


def straightness(traj: torch.Tensor, ts: torch.Tensor) -> float:
    """S = ∫_0^1 E ||(x_1 - x_0) - dx_t/dt||^2 dt (Liu et al. 2022, eq. 7); 0 for straight paths.

    dx/dt on each step is the finite difference of the saved trajectory, so it measures the
    path the solver actually took (use a fine grid).
    """
    traj = traj.flatten(2).double()
    dt = (ts[1:] - ts[:-1]).double().to(traj.device)
    vel = (traj[1:] - traj[:-1]) / dt[:, None, None]
    chord = (traj[-1] - traj[0]) / (ts[-1] - ts[0]).double()
    dev = (vel - chord[None]).pow(2).sum(-1).mean(1)
    return float((dev * dt.abs()).sum() / (ts[-1] - ts[0]).abs().double())


def mean_curvature(traj: torch.Tensor) -> float:
    """Mean total turning angle ∫|κ| ds per path, in radians (0 for straight paths).

    Sum over interior points of the angle between consecutive displacement vectors.
    """
    d = (traj[1:] - traj[:-1]).flatten(2).double()
    a, b = d[:-1], d[1:]
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-30)
    return float(torch.arccos(cos.clamp(-1, 1)).sum(0).mean())


def rms_error(x: torch.Tensor, ref: torch.Tensor) -> float:
    """sqrt(E ||x_i - ref_i||^2) between matched samples, e.g. a solver's endpoints and an
    accurate solve of the same starting points (its global error, with no sampling noise)."""
    return float((_flat(x) - _flat(ref)).pow(2).sum(1).mean().sqrt())


def transport_cost(x0: torch.Tensor, x1: torch.Tensor) -> float:
    """E ||x1 - x0||^2 of a coupling."""
    return float((_flat(x1) - _flat(x0)).pow(2).sum(1).mean())


def segments_cross(p0, p1, q0, q1) -> torch.Tensor:
    """Whether 2-D segments p0->p1 and q0->q1 properly intersect (broadcasts leading dims)."""
    def orient(a, b, c):
        return torch.sign((b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1])
                          - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0]))

    return ((orient(p0, p1, q0) * orient(p0, p1, q1) < 0)
            & (orient(q0, q1, p0) * orient(q0, q1, p1) < 0))


def crossing_fraction(x0: torch.Tensor, x1: torch.Tensor, max_pairs: int = 400) -> float:
    """Fraction of pairs of 2-D pair lines (x0_i -> x1_i, x0_j -> x1_j), i < j, that intersect."""
    x0, x1 = x0[:max_pairs].double(), x1[:max_pairs].double()
    n = len(x0)
    if n < 2:
        return 0.0
    c = segments_cross(x0[:, None], x1[:, None], x0[None], x1[None])
    return float(c.triu(1).sum() / (n * (n - 1) / 2))
