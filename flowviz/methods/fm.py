"""Flow matching / rectified flow (article §1.2 L_FM, §2 linear path).

    L_FM = E_{t ~ p_t, (x0, x1) ~ pi} ell( v_theta(x_t, t) - (a'_t x0 + b'_t x1) ),
    ell(r) = ||r||^2 by default

on tensors of any shape (B, *dims). The coupling pi is applied before (flowviz.data.couple).
The time distribution p_t and the per-sample loss ell are arguments, so the improved 2-RF
training of Lee, Lin & Fanti 2024 (U-shaped t, pseudo-Huber; flowviz.methods.reflow) uses this
same function.

Class conditions (article §4.1, classifier-free guidance, Ho & Salimans 2022): ``drop_labels``
replaces a label by the "no condition" token with probability p_uncond while training, so one
network also learns v(x, t | ∅); ``guided`` mixes the two fields at sampling time. The 2-D
InstaFlow teacher and the image runs share both.
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


def trailing_rows(mask: torch.Tensor, what: str) -> int:
    """How many rows of a batch are flagged in ``mask`` (B,), checking they are its last ones
    (Shortcut's self-consistency rows, MeanFlow's r > t rows). One read from the device: the
    objectives pass their fixed counts instead."""
    n = int(mask.sum())
    if mask[:len(mask) - n].any():
        raise ValueError(f"the rows with {what} must be the last ones")
    return n


def drop_labels(c: torch.Tensor, n_classes: int, p_uncond: float, generator=None) -> torch.Tensor:
    """Classifier-free guidance's label dropout: each label of c (B,) becomes the "no
    condition" token ``n_classes`` with probability ``p_uncond`` (drawn on the generator's
    device)."""
    dev = generator.device if generator is not None else c.device
    drop = torch.rand(c.shape[0], generator=generator, device=dev).to(c.device) < p_uncond
    return torch.where(drop, n_classes, c)


def guided(field, w: float):
    """Classifier-free guidance on a velocity field: v_u + w (v(. | c) - v_u), v_u = v(. | ∅).
    w = 1 is the plain conditional field, w = 0 the unconditional one. ``field(x, t, label=)``
    with label None meaning "no condition"."""
    if w == 1.0:
        return field

    def v(x, t, label=None):
        vu = field(x, t, label=None)
        return vu if label is None else vu + w * (field(x, t, label=label) - vu)

    return v


def fm_objective(sample_x0, sample_x1, batch: int, coupling: str = "independent",
                 path=LinearPath(), t=None, loss=None, n_classes: int = 0,
                 p_uncond: float = 0.0):
    """An objective for flowviz.train: draws (x0, x1) with samplers ``(n, g) -> (x, labels)``
    (flowviz.data), applies the coupling, and returns the FM loss (``t``, ``loss``: as in
    fm_loss). ``n_classes`` > 0: class-conditional FM on x1's labels, dropped to the token
    ``n_classes`` with probability ``p_uncond`` (drop_labels; the coupling must then be
    "independent", which keeps each x1 with its label)."""
    from ..data import couple

    if n_classes and coupling != "independent":
        raise ValueError("class-conditional FM needs the independent coupling")

    def objective(model, g):
        dev = next(model.parameters()).device
        if not n_classes:
            x0, x1 = couple(coupling, sample_x0(batch, g)[0].to(dev),
                            sample_x1(batch, g)[0].to(dev))
            return fm_loss(model, x0, x1, t, path, loss, generator=g), {}
        x0 = sample_x0(batch, g)[0].to(dev)
        x1, c = (a.to(dev) for a in sample_x1(batch, g))
        c = drop_labels(c, n_classes, p_uncond, g)
        return fm_loss(model, x0, x1, t, path, loss, generator=g, label=c), {}

    return objective
