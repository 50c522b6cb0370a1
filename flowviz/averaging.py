"""The averaging behind v* (article §2, §2.1), measured: the lines through one point and their
weighted average, checked without the closed form, and a trained field against v*.

The pairs whose straight lines pass through x at time t are weighted by how likely each is;
their directions x1 - x0 averaged with those weights are v*(x, t). A Monte-Carlo estimate (random
independent pairs whose x_t lands near x, and their mean direction) shares nothing with the
closed form, so agreement is a real check.
"""

from __future__ import annotations

import torch

from .analysis import field_on, grid, path_metrics, quality_vs_nfe
from .exact import ExactField


def probe(field: ExactField, x: torch.Tensor, t: float, k: int) -> dict:
    """The pairs through x (2,) at time t: the k heaviest lines (``weights`` (k,), ``x0``,
    ``x1`` (k, 2), ``directions`` x1 - x0), the share of all weight they carry, v*(x, t) and
    the spread tr Cov[x1 - x0 | x_t = x] of the directions it averages."""
    w, x0, x1 = field.pairs_through(x, t)
    top = torch.argsort(w, descending=True)[:k]
    return {"weights": w[top], "x0": x0[top], "x1": x1[top], "directions": (x1 - x0)[top],
            "share": float(w[top].sum()), "v_star": field(x[None], t)[0],
            "spread": float(field.velocity_cov(x[None], t)[0].trace())}


def monte_carlo_velocity(field: ExactField, x: torch.Tensor, t: float, radius: float = 0.15,
                         m: int = 200_000, seed: int = 0) -> tuple[torch.Tensor, int]:
    """E[x1 - x0 | x_t within ``radius`` of x] from m random independent pairs (Gaussian x0,
    x1 from the target): (mean direction (2,), number of pairs that landed near x; NaN when
    none did)."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(m, 2, generator=g)
    x1 = field.sample_target(m, g)
    near = ((1 - t) * x0 + t * x1 - x).norm(dim=1) < radius
    if not near.any():
        return torch.full((2,), float("nan")), 0
    return (x1 - x0)[near].mean(0), int(near.sum())


def learned_field(model, field: ExactField, t: float, lim: float, n_arrows: int = 21,
                  n_heat: int = 61) -> tuple:
    """A trained v_θ(·, t) on an n_arrows² grid over [-0.9 lim, 0.9 lim]² (points, vectors), and
    its error ‖v_θ − v*‖ on an n_heat² grid over [-lim, lim]² (xs, ys, err (n_heat, n_heat),
    row-major in y as plotly's heatmap reads it)."""
    dev = next(model.parameters()).device
    pts, _, _ = grid(lim * 0.9, n_arrows)
    xs = torch.linspace(-lim, lim, n_heat)
    hpts = torch.stack(torch.meshgrid(xs, xs, indexing="xy"), -1).reshape(-1, 2)
    err = (field_on(model, hpts.to(dev), t).cpu() - field(hpts, t)).norm(dim=1)
    return pts, field_on(model, pts.to(dev), t).cpu(), (xs, xs, err.reshape(n_heat, n_heat))


@torch.no_grad()
def evaluate_flow(model, x0: torch.Tensor, ref: torch.Tensor, n_paths: int = 200) -> dict:
    """A trained flow's quality vs NFE (Euler from x0, energy distance to data samples ref) and
    the metrics of its paths from the first n_paths of x0 (RK4, 50 steps)."""
    return {"nfe": quality_vs_nfe(model, x0, ref), "paths": path_metrics(model, x0[:n_paths],
                                                                          steps=50)}
