"""Computations the pages and the CLI share: fields on grids, quality-vs-NFE sweeps, path metrics.

Each takes a *field* ``f(x, t) -> v`` (a trained model or flowviz.exact.ExactField alike).
"""

from __future__ import annotations

import torch

from . import metrics
from .solvers import EVALS_PER_STEP, solve, steps_for_nfe

NFES = (1, 2, 4, 8, 16, 32, 64, 128)


def grid(lim: float = 4.0, n: int = 25, device=None):
    """An n x n grid over [-lim, lim]^2: (points (n*n, 2), xs (n,), ys (n,)), row-major in y."""
    xs = torch.linspace(-lim, lim, n, device=device)
    yy, xx = torch.meshgrid(xs, xs, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten()], 1), xs, xs


@torch.no_grad()
def field_on(field, points: torch.Tensor, t: float) -> torch.Tensor:
    return field(points, torch.full((len(points),), float(t), device=points.device))


@torch.no_grad()
def quality_vs_nfe(field, x0: torch.Tensor, ref: torch.Tensor, method: str = "euler",
                   nfes=NFES, t1: float = 1.0, sample=None,
                   metric=metrics.energy_distance) -> tuple[list[int], list[float]]:
    """``metric(samples, ref)`` of samples from ``x0`` at each NFE budget (default: energy
    distance to data samples ``ref``; metrics.rms_error with ``ref`` = accurate endpoints of
    the same x0 measures the solver's own error).

    A budget is spent as floor(nfe / evals-per-step) fixed steps, so RK4 starts at NFE 4;
    budgets a method cannot meet are skipped. ``sample``: a few-step sampler ``(x0, nfe) ->
    Solution`` used instead of an ODE solve of ``field`` (e.g. MeanFlow's jumps, §6). Returns
    the NFE actually used."""
    out_n, out_q = [], []
    for nfe in nfes:
        if sample is not None:
            s = sample(x0, nfe)
        elif nfe < EVALS_PER_STEP[method]:
            continue
        else:
            s = solve(field, x0, method, steps_for_nfe(method, nfe), t1=t1)
        out_n.append(s.nfe)
        out_q.append(metric(s.x, ref))
    return out_n, out_q


@torch.no_grad()
def adaptive_point(field, x0, ref, method: str = "dopri5", tol: float = 1e-4, t1: float = 1.0,
                   metric=metrics.energy_distance):
    """(NFE, metric) of an adaptive solve at tolerance ``tol`` (metric as in quality_vs_nfe)."""
    s = solve(field, x0, method, rtol=tol, atol=tol, t1=t1)
    return s.nfe, metric(s.x, ref)


@torch.no_grad()
def path_metrics(field, x0: torch.Tensor, steps: int = 100, n_cross: int = 300,
                 t1: float = 1.0) -> dict:
    """Straightness, curvature, crossings and transport cost of the coupling a field induces,
    from a fine RK4 solve (``steps``) started at x0. Returns the trajectory too."""
    s = solve(field, x0, "rk4", steps, return_traj=True, t1=t1)
    out = {
        "straightness": metrics.straightness(s.traj, s.ts),
        "curvature": metrics.mean_curvature(s.traj),
        "transport_cost": metrics.transport_cost(s.traj[0], s.traj[-1]),
    }
    if x0.shape[1:] == (2,):
        out["crossing_fraction"] = metrics.crossing_fraction(s.traj[0], s.traj[-1], n_cross)
    return out | {"traj": s.traj, "ts": s.ts}


def coupling_metrics(x0: torch.Tensor, x1: torch.Tensor, n_cross: int = 300) -> dict:
    """Crossing fraction and transport cost of given pairs (e.g. independent or OT pairs)."""
    return {"crossing_fraction": metrics.crossing_fraction(x0, x1, n_cross),
            "transport_cost": metrics.transport_cost(x0, x1)}
