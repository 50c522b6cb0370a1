"""One-step distillation (article §4.3; InstaFlow, Liu et al. 2024, §3.3; rectified flow §2.3).

A student v~(x0 | c) learns the whole ODE map of a teacher in one displacement:

    v~ = argmin_v E_{x0, c} D( ODE[v_T](x0 | c), x0 + v(x0 | c) )

D is the squared error or pseudo-Huber here (InstaFlow uses LPIPS, the image-space version).
This is the (k+1)-RF objective of flowviz.methods.reflow at the single time t = 0: there
x_t = x0 and the target is x1 - x0, so the residual is exactly x0 + v(x0, 0) - x1. The student
is the same network as a flow (t is pinned to 0), so it can start from the teacher's weights.
Works on tensors of any shape (B, *dims), with per-sample conditions (``label=``).
"""

from __future__ import annotations

import torch

from .reflow import Pairs, reflow_objective


def zero_t(b: int, like: torch.Tensor, generator=None) -> torch.Tensor:
    """The student's only time: t = 0 for every sample."""
    return torch.zeros(b, device=like.device, dtype=like.dtype)


def distill_objective(pairs: Pairs, batch: int, loss=None, weights: torch.Tensor | None = None):
    """An objective for flowviz.train: E D(x1, x0 + v(x0, 0 | c)) over the teacher's ``pairs``
    (x0, x1 = ODE endpoint, cond). ``loss``: per-sample D (None: squared error);
    ``weights``: per-pair sampling weights (None: uniform)."""
    return reflow_objective(pairs, batch, t=zero_t, loss=loss, weights=weights)


def one_step(model, x0: torch.Tensor, **cond) -> torch.Tensor:
    """x1 = x0 + v~(x0 | c): the student's sample, exactly one network call."""
    return x0 + model(x0, zero_t(x0.shape[0], x0), **cond)
