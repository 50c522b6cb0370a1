"""What a page shows while a 2-D run trains: its loss's floor and its model's samples.

The floor (article §2): the flow-matching loss E‖v_θ(x_t, t) − (x1 − x0)‖² splits into
E‖v_θ − v*‖² + E‖x1 − x0 − v*(x_t, t)‖², because v*(x, t) = E[x1 − x0 | x_t = x] is the
conditional mean. The second term does not depend on θ: many pairs pass through the same x_t
with different directions, and no network can predict more than their average. It is the
loss's floor, estimated here by Monte Carlo with the exact field of the same data.
"""

from __future__ import annotations

import functools

import torch

from .exact import ExactField
from .experiment import UPLOAD, FMRun, MeanFlowRun, ShortcutRun
from .methods import meanflow, shortcut
from .models import TimeMLP
from .solvers import solve


def uniform_times(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g, dtype=torch.float64)


def meanflow_fm_times(cfg: meanflow.MeanFlowConfig, n: int, g: torch.Generator) -> torch.Tensor:
    """The times of MeanFlow's r = t rows: the smaller of its two draws."""
    return meanflow.sample_times(n, cfg, g, 0.0)[0].double()


@torch.no_grad()
def fm_loss_floor(field: ExactField, n: int = 20_000, times=uniform_times,
                  seed: int = 0) -> tuple[float, float]:
    """E‖x1 − x0 − v*(x_t, t)‖² on the linear path, x0 ~ N(0, σ² I), x1 from the field's
    target mixture, t from ``times(n, generator)`` (the objective's own time law: the floor
    depends on it): the part of the flow-matching loss no network can remove. Returns (mean,
    its standard error) over n Monte-Carlo draws."""
    g = torch.Generator().manual_seed(seed)
    x1 = field.sample_target(n, g).double()
    x0 = field.sigma * torch.randn(x1.shape, generator=g, dtype=torch.float64)
    t = times(n, g).double()
    xt = (1 - t[:, None]) * x0 + t[:, None] * x1
    e = (x1 - x0 - field.velocity(xt, t)).pow(2).sum(1)
    return e.mean().item(), (e.std() / n**0.5).item()


def floor_part(run) -> tuple[dict[str, float], meanflow.MeanFlowConfig | None] | None:
    """Which logged loss parts have the floor, as ``{part: share}`` (the floor times the share
    of flow-matching rows in that part), and the law of their times (None: t uniform; a
    MeanFlowConfig: the smaller of its two draws, as on MeanFlow's r = t rows). Only for runs
    of independent pairs from N(0, I) (the exact field's setting); None for other runs
    (minibatch OT pairs, ReFlow's coupled pairs, other sources: their floor differs).
    FM: "loss". Shortcut: its d = 0 rows "L_FM", and "loss", whose self-consistency rows have
    deterministic targets (no floor). MeanFlow: its r = t rows "mse_fm" (its r > t rows' target
    moves with the net, so its total has no fixed floor)."""
    if not isinstance(run, FMRun) or run.coupling != "independent" or run.source != "gaussian":
        return None
    if isinstance(run, MeanFlowRun):  # only the time law matters (a stable cache key)
        m = run.meanflow
        return {"mse_fm": 1.0}, meanflow.MeanFlowConfig(time_sampler=m.time_sampler, mu=m.mu,
                                                         sigma=m.sigma)
    if isinstance(run, ShortcutRun):
        n_fm = run.batch - round(run.shortcut.sc_frac * run.batch)  # as ShortcutObjective
        return {"L_FM": 1.0, "loss": n_fm / run.batch}, None
    return {"loss": 1.0}, None


def time_law(law: meanflow.MeanFlowConfig | None):
    """``(n, generator) -> t`` (n,) of a :func:`floor_part` time law."""
    return uniform_times if law is None else functools.partial(meanflow_fm_times, law)


def data_of(run: FMRun) -> FMRun:
    """The run's data alone (source, target, coupling, fixed set), the rest at defaults."""
    keep = ("source", "target", "coupling", "n_data", "data_seed", "h")
    return FMRun(**{k: getattr(run, k) for k in keep})


def run_field(run: FMRun, uploaded: torch.Tensor | None = None) -> ExactField | None:
    """The exact field of the data a run trains on (its fixed set widened by h), or None when
    the run draws fresh samples (n_data = 0: no closed form) or lacks its upload."""
    if run.n_data == 0 and run.target != UPLOAD:
        return None
    if run.target == UPLOAD and uploaded is None:
        return None
    return ExactField(run.target_points(uploaded), h=run.h)


def kind_of(model: torch.nn.Module) -> str | None:
    """How a 2-D model samples: "meanflow" (a MeanVelocity u(x, t, r)), "shortcut" (a TimeMLP
    s(x, t, d)) or "euler" (a TimeMLP v(x, t)); None for other models (images, latents,
    class-conditional nets)."""
    net = model.net if isinstance(model, meanflow.MeanVelocity) else model
    if not isinstance(net, TimeMLP) or net.cfg.dim != 2 or net.cfg.n_classes:
        return None
    if net is not model:
        return "meanflow"
    return {1: "euler", 2: "shortcut"}.get(net.cfg.n_scalars)


@torch.no_grad()
def few_step(model: torch.nn.Module, x0: torch.Tensor, nfe: int) -> torch.Tensor:
    """``nfe``-call samples of a 2-D model by its own method (:func:`kind_of`): MeanFlow's
    jumps, shortcut steps of size 1 / nfe, or Euler steps."""
    kind = kind_of(model)
    if kind == "meanflow":
        return meanflow.sample(model, x0, nfe).x
    if kind == "shortcut":
        return shortcut.sample(model, x0, nfe).x
    if kind == "euler":
        return solve(model, x0, "euler", nfe).x
    raise ValueError(f"no 2-D sampler for a {type(model).__name__}")
