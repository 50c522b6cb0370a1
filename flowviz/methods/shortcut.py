"""Shortcut models: one network s(x_t, t, d) for any number of steps (article §5–5.2, §6.3.1;
Frans et al., "One Step Diffusion via Shortcut Models", ICLR 2025).

s(x_t, t, d) is the average direction over [t, t + d], so x_{t+d} = x_t + d s(x_t, t, d) (§5.1).
The loss (§5.2) is flow matching at d = 0 plus self-consistency at d > 0:

    L_FM = E || s(x_t, t, 0) - (x1 - x0) ||^2
    L_SC = E || s(x_t, t, 2d) - s_tgt ||^2,
    s_tgt = ½ s(x_t, t, d) + ½ s(x'_{t+d}, t + d, d),   x'_{t+d} = x_t + d s(x_t, t, d),

with s_tgt under stop-gradient or from the EMA copy. Here the step being trained is called D
(= 2d) and the target rule is a :class:`Template` (§6.3.1): walk D in segments beta_i D and
average the segment directions with weights w_i. Halves are the paper's rule; any template with
w_i = beta_i is a consistent composition.

Below the finest step d_min = 1 / m_max a segment is evaluated at d = 0 (the instantaneous
velocity that FM trains), so the recursion bottoms out in flow matching: s(·, ·, 1/128) is
trained from two Euler half-steps of s(·, ·, 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from ..paths import LinearPath
from ..solvers import Solution, solve
from .fm import fm_loss, trailing_rows

D_GRIDS = ("pow2", "steps")
TARGETS = ("ema", "stopgrad")


class TemplateError(ValueError):
    """A target template that does not describe a walk over [t, t + D]."""


@dataclass(frozen=True)
class Template:
    """Self-consistency target for a step D (§6.3.1, "general RK-style template").

    Walk the segments in order: x_{i+1} = x_i + beta_i D s(x_i, t_i, beta_i D), t_{i+1} = t_i +
    beta_i D, and take s_tgt = sum_i w_i s(x_i, t_i, beta_i D). ``segments`` (beta_i > 0) must
    cover the step (sum 1). The composition is *consistent* — D s_tgt is exactly the displacement
    of the composed steps, so the exact flow map is a fixed point — iff w_i = beta_i.
    """

    segments: tuple[float, ...] = (0.5, 0.5)
    weights: tuple[float, ...] = (0.5, 0.5)
    BOUNDS: ClassVar[dict] = {"segments": (0.0, 1.0), "weights": (-10.0, 10.0)}

    def __post_init__(self):
        seg = tuple(float(b) for b in self.segments)
        w = tuple(float(a) for a in self.weights)
        object.__setattr__(self, "segments", seg)
        object.__setattr__(self, "weights", w)
        if not seg:
            raise TemplateError("a template needs at least one segment")
        if len(w) != len(seg):
            raise TemplateError(f"{len(seg)} segments but {len(w)} weights")
        if not all(math.isfinite(v) for v in seg + w):
            raise TemplateError("segments and weights must be finite numbers")
        if min(seg) <= 0:
            raise TemplateError("segment lengths must be positive (the walk goes forward in t)")
        if abs(sum(seg) - 1) > 1e-6:
            raise TemplateError(f"segments must cover the step: they sum to {sum(seg):.4g}, "
                                "not 1")

    @property
    def consistent(self) -> bool:
        return all(abs(a - b) <= 1e-6 for a, b in zip(self.weights, self.segments, strict=True))

    def problems(self) -> list[str]:
        """Why the composition is inconsistent (empty when it is consistent)."""
        out = []
        if not self.consistent:
            out.append("the weights differ from the segment lengths, so D·s_tgt is not the "
                       "displacement of the composed steps: the exact flow map is no longer a "
                       "fixed point, and the large-d field learns a biased jump")
        if abs(sum(self.weights) - 1) > 1e-6:
            out.append(f"the weights sum to {sum(self.weights):.3g}, not 1: even a constant "
                       "velocity is not reproduced, and the error compounds over the "
                       "log2(m_max) levels of d")
        return out

    def label(self) -> str:
        def frac(v):
            for q in (1, 2, 3, 4, 5, 6, 8):
                if abs(v * q - round(v * q)) < 1e-6:
                    return f"{round(v * q)}/{q}" if q > 1 else f"{round(v)}"
            return f"{v:.3g}"
        return (f"segments ({', '.join(frac(b) for b in self.segments)}) · weights "
                f"({', '.join(frac(w) for w in self.weights)})")


HALVES = Template((0.5, 0.5), (0.5, 0.5))
TEMPLATES = {
    "halves": HALVES,  # the paper's rule (§5.1)
    "two_thirds": Template((2 / 3, 1 / 3), (2 / 3, 1 / 3)),  # §6.3.1's unequal split
    "thirds": Template((1 / 3, 1 / 3, 1 / 3), (1 / 3, 1 / 3, 1 / 3)),
    "first_only": Template((0.5, 0.5), (1.0, 0.0)),  # inconsistent: collapses to Euler
}


@dataclass(frozen=True)
class ShortcutConfig:
    sc_frac: float = 0.25  # fraction of each batch spent on self-consistency (paper: 1/4)
    m_max: int = 128  # finest step d_min = 1 / m_max; the sampler's largest step count
    d_grid: str = "pow2"  # "pow2": D in {1, 1/2, ..., 1/m_max}; "steps": D = 1/M, any M <= m_max
    target: str = "ema"  # s_tgt from the EMA copy, or "stopgrad" (the online weights, no grad)
    template: Template = field(default_factory=Template)
    BOUNDS: ClassVar[dict] = {"sc_frac": (0.0, 1.0), "m_max": (1, 1024)}  # from_dict accepts

    def __post_init__(self):
        if not 0 <= self.sc_frac <= 1:
            raise ValueError("sc_frac must be in [0, 1]")
        if self.d_grid not in D_GRIDS:
            raise ValueError(f"d_grid must be one of {D_GRIDS}")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}")
        if self.m_max < 1 or (self.d_grid == "pow2" and self.m_max & (self.m_max - 1)):
            raise ValueError("m_max must be a power of two for d_grid='pow2'")

    @property
    def d_min(self) -> float:
        return 1.0 / self.m_max

    def grid(self) -> list[int]:
        """The step counts M whose steps D = 1/M the self-consistency loss trains."""
        if self.d_grid == "pow2":
            return [2**k for k in range(int(math.log2(self.m_max)) + 1)]
        return list(range(1, self.m_max + 1))

    def off_grid(self) -> list[tuple[int, float]]:
        """(M, h): the template's target for D = 1/M queries s(., ., h) at a step h >= d_min that
        is itself never trained (1/h is not on the grid), so the network can only interpolate in
        d there. Empty for halves on either grid."""
        grid, out = set(self.grid()), []
        for m in self.grid():
            for beta in self.template.segments:
                h = beta / m
                inv = 1 / h
                if h >= self.d_min * (1 - 1e-6) and not (abs(inv - round(inv)) < 1e-6
                                                         and round(inv) in grid):
                    out.append((m, h))
        return out


def at_d(model, d: float):
    """The field x, t -> s(x, t, d) at a fixed step size (a plain v(x, t) for solvers)."""
    return lambda x, t: model(x, t, torch.full_like(t, float(d)))


def draw_steps(cfg: ShortcutConfig, n: int, g: torch.Generator | None = None):
    """(t, D) for n self-consistency rows, on the generator's device (CPU without one): D = 1/M
    from the grid, t = k/M with k uniform
    in {0, ..., M - 1} (times aligned to the step, so t + D <= 1). "pow2" draws log2 M
    uniformly from {0, ..., log2 m_max}; "steps" draws log2 M uniformly in [0, log2 m_max] and
    rounds M to an integer, so every step count is trained."""
    levels = math.log2(cfg.m_max)
    dev = g.device if g is not None else None
    if cfg.d_grid == "pow2":
        m = 2.0 ** torch.randint(0, int(levels) + 1, (n,), generator=g, device=dev).float()
    else:
        m = (2.0 ** (torch.rand(n, generator=g, device=dev) * levels)).round() \
            .clamp(1, cfg.m_max)
    k = torch.floor(torch.rand(n, generator=g, device=dev) * m).clamp(max=m - 1)
    return k / m, 1.0 / m


@torch.no_grad()
def shortcut_target(net, x: torch.Tensor, t: torch.Tensor, D: torch.Tensor,
                    template: Template = HALVES, d_min: float = 1 / 128) -> torch.Tensor:
    """s_tgt for the step D from the point x at time t (§5.2 / §6.3.1), without gradient.

    Segment i moves by h_i = beta_i D with the direction s(x_i, t_i, h_i), or s(x_i, t_i, 0) when
    h_i < d_min. Returns sum_i w_i s_i, of x's shape."""
    shape = (-1, *([1] * (x.dim() - 1)))
    target, xi, ti = torch.zeros_like(x), x, t
    for beta, w in zip(template.segments, template.weights, strict=True):
        h = beta * D
        s = net(xi, ti, torch.where(h < d_min * (1 - 1e-6), torch.zeros_like(h), h))
        target = target + w * s
        xi, ti = xi + h.reshape(shape) * s, ti + h
    return target


def shortcut_loss(model, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, D: torch.Tensor,
                  target_net=None, template: Template = HALVES, d_min: float = 1 / 128,
                  n_sc: int | None = None, target=shortcut_target):
    """The shortcut loss on one batch (§5.2). The first rows have D = 0: flow matching of
    s(·, ·, 0); the last ``n_sc`` rows have D > 0 and regress s(x_t, t, D) on the template
    target (``target``: :func:`shortcut_target` or a compiled copy) computed with
    ``target_net`` (default: the model itself, under stop-gradient). ``n_sc=None`` counts the
    rows with D > 0 (one read from the device) and checks they come last. The parts are averaged
    over the whole batch, as in the paper. Returns (loss, L_FM, L_SC); an empty part is NaN.

    A self-consistency row is an FM row on a synthetic pair: the straight line through x_t at
    time t with velocity s_tgt, x0' = x_t - t s_tgt and x1' = x_t + (1 - t) s_tgt. So the whole
    batch is one fm_loss call, one forward pass of the network."""
    b = len(D)
    if n_sc is None:
        n_sc = trailing_rows(D > 0, "D > 0")
    f = b - n_sc
    if n_sc:
        tb = t[f:].reshape(-1, *([1] * (x0.dim() - 1)))
        xt = LinearPath().interpolate(x0[f:], x1[f:], t[f:])
        tgt = target(model if target_net is None else target_net, xt, t[f:], D[f:], template,
                     d_min)
        x0, x1 = torch.cat([x0[:f], xt - tb * tgt]), torch.cat([x1[:f], xt + (1 - tb) * tgt])
    per_row = {}

    def squared(r):
        per_row["e"] = r.pow(2).flatten(1).sum(1)
        return per_row["e"]

    loss = fm_loss(lambda x, tt: model(x, tt, D), x0, x1, t, loss=squared)
    e = per_row["e"].detach()
    nan = e.new_tensor(float("nan"))
    return loss, (e[:f].mean() if f else nan), (e[f:].mean() if n_sc else nan)


class ShortcutObjective:
    """An objective for flowviz.train: each batch is (1 - sc_frac) flow-matching rows (t uniform,
    d = 0) and sc_frac self-consistency rows (t, D from :func:`draw_steps`). Logs the parts as
    "L_FM" and "L_SC". ``ema`` is set by flowviz.train.init_state; ``target="ema"`` needs it."""

    def __init__(self, sample_x0, sample_x1, batch: int, cfg: ShortcutConfig | None = None,
                 coupling: str = "independent"):
        self.sample_x0, self.sample_x1, self.batch = sample_x0, sample_x1, batch
        self.cfg = cfg or ShortcutConfig()
        self.coupling = coupling
        self.ema: torch.nn.Module | None = None
        self.target = shortcut_target  # compiled image runs: a torch.compile'd copy

    def __call__(self, model, g):
        from ..data import couple

        dev = next(model.parameters()).device
        b, cfg = self.batch, self.cfg
        x0, x1 = couple(self.coupling, self.sample_x0(b, g)[0].to(dev),
                        self.sample_x1(b, g)[0].to(dev))
        n_sc = round(cfg.sc_frac * b)
        t_sc, D_sc = draw_steps(cfg, n_sc, g)
        t = torch.cat([torch.rand(b - n_sc, generator=g, device=g.device), t_sc]).to(dev)
        D = torch.cat([torch.zeros(b - n_sc, device=D_sc.device), D_sc]).to(dev)
        if cfg.target == "ema" and self.ema is None:
            raise ValueError("target='ema' needs an EMA copy: OptimConfig.ema > 0 and a state "
                             "built by flowviz.train.init_state")
        net = self.ema if cfg.target == "ema" else model
        loss, l_fm, l_sc = shortcut_loss(model, x0, x1, t, D, net, cfg.template, cfg.d_min,
                                         n_sc, self.target)
        return loss, {"L_FM": l_fm.detach(), "L_SC": l_sc.detach()}


def sample(model, x0: torch.Tensor, m: int, return_traj: bool = False) -> Solution:
    """M-step shortcut sampling (§5.2): d = 1/M, x <- x + d s(x, t, d), t <- t + d; exactly M
    network calls (Solution.nfe). The trajectory has M + 1 points. ``partial(sample, model)`` is
    the few-step sampler that flowviz.analysis.quality_vs_nfe takes."""
    return solve(at_d(model, 1.0 / m), x0, "euler", m, return_traj=return_traj)


@torch.no_grad()
def consistency_picture(model, x: torch.Tensor, t: float, d: float) -> dict:
    """One step of 2d against two steps of d from the points x (N, *dims) at time t (§5.1).

    Returns the one-step end x + 2d s(x, t, 2d), the midpoint x' = x + d s(x, t, d), the
    two-step end x' + d s(x', t + d, d), and the gap between the two ends."""
    tt = torch.full((len(x),), float(t), device=x.device, dtype=x.dtype)
    one = x + 2 * d * at_d(model, 2 * d)(x, tt)
    mid = x + d * at_d(model, d)(x, tt)
    two = mid + d * at_d(model, d)(mid, tt + d)
    return {"x": x, "one": one, "mid": mid, "two": two,
            "gap": (one - two).flatten(1).norm(dim=1)}
