"""Flow matching / rectified flow (article §1.2 L_FM, §2 linear path).

    L_FM = E_{t, (x0, x1) ~ pi} || v_theta(x_t, t) - (a'_t x0 + b'_t x1) ||^2

on tensors of any shape (B, *dims). The coupling pi is applied before (flowviz.data.couple).
"""

from __future__ import annotations

import torch

from ..paths import LinearPath


def uniform_t(b: int, like: torch.Tensor, generator=None) -> torch.Tensor:
    return torch.rand(b, device=like.device, dtype=like.dtype, generator=generator)


def fm_loss(model, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor | None = None,
            path=LinearPath(), **cond) -> torch.Tensor:
    """Mean squared error between v_theta(x_t, t) and the conditional velocity, per batch."""
    if t is None:
        t = uniform_t(x0.shape[0], x0)
    xt = path.interpolate(x0, x1, t)
    target = path.velocity(x0, x1, t)
    return (model(xt, t, **cond) - target).pow(2).flatten(1).sum(1).mean()


def fm_objective(sample_x0, sample_x1, batch: int, coupling: str = "independent",
                 path=LinearPath()):
    """An objective for flowviz.train: draws (x0, x1) with samplers ``(n, g) -> (x, labels)``
    (flowviz.data), applies the coupling, and returns the FM loss."""
    from ..data import couple

    def objective(model, g):
        dev = next(model.parameters()).device
        x0, x1 = couple(coupling, sample_x0(batch, g)[0].to(dev),
                        sample_x1(batch, g)[0].to(dev))
        t = torch.rand(batch, generator=g).to(dev)
        return fm_loss(model, x0, x1, t, path), {}

    return objective
