"""Flow matching / rectified flow (article §1.2 L_FM, §2 linear path).

    L_FM = E_{t ~ p_t, (x0, x1) ~ pi} ell( v_theta(x_t, t) - (a'_t x0 + b'_t x1) ),
    ell(r) = ||r||^2 by default

on tensors of any shape (B, *dims). The coupling pi is applied before (flowviz.data.couple).
The time distribution p_t and the per-sample loss ell are arguments, so the improved 2-RF
training of Lee, Lin & Fanti 2024 (U-shaped t, pseudo-Huber; flowviz.methods.reflow) uses this
same function.
"""

from __future__ import annotations

import torch

from ..paths import LinearPath


def uniform_t(b: int, like: torch.Tensor, generator=None) -> torch.Tensor:
    """t ~ U[0, 1], drawn on the generator's device, returned on ``like``'s device and dtype."""
    dev = generator.device if generator is not None else like.device
    return torch.rand(b, device=dev, generator=generator).to(like.device, like.dtype)


def squared_error(r: torch.Tensor) -> torch.Tensor:
    """Per-sample ||r||^2 of residuals r (B, *dims) -> (B,)."""
    return r.pow(2).flatten(1).sum(1)


def fm_loss(model, x0: torch.Tensor, x1: torch.Tensor, t=None, path=LinearPath(), loss=None,
            generator=None, **cond) -> torch.Tensor:
    """Mean over the batch of ell(v_theta(x_t, t) - conditional velocity).

    ``t``: times (B,), or a sampler ``(b, like, generator) -> (B,)`` (None: uniform_t);
    ``loss``: per-sample ell ``(B, *dims) -> (B,)`` (None: squared_error). ``cond`` goes to the
    model (e.g. ``label=``)."""
    if t is None:
        t = uniform_t
    if callable(t):
        t = t(x0.shape[0], x0, generator)
    xt = path.interpolate(x0, x1, t)
    target = path.velocity(x0, x1, t)
    return (loss or squared_error)(model(xt, t, **cond) - target).mean()


def fm_objective(sample_x0, sample_x1, batch: int, coupling: str = "independent",
                 path=LinearPath(), t=None, loss=None):
    """An objective for flowviz.train: draws (x0, x1) with samplers ``(n, g) -> (x, labels)``
    (flowviz.data), applies the coupling, and returns the FM loss (``t``, ``loss``: as in
    fm_loss)."""
    from ..data import couple

    def objective(model, g):
        dev = next(model.parameters()).device
        x0, x1 = couple(coupling, sample_x0(batch, g)[0].to(dev),
                        sample_x1(batch, g)[0].to(dev))
        return fm_loss(model, x0, x1, t, path, loss, generator=g), {}

    return objective
