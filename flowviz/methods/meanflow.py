"""MeanFlow: learn the mean velocity over an interval (article §6–6.2; Geng et al., "Mean Flows
for One-step Generative Modeling", 2025).

Time runs from noise t = 0 to data t = 1 (DESIGN.md), so with r >= t

    u(x_t, t, r) = 1 / (r - t) ∫_t^r v(x_τ, τ) dτ,        x_r = x_t + (r - t) u(x_t, t, r).

Differentiating (r - t) u = ∫_t^r v dτ in t gives the MeanFlow identity (§6.1, eq. meanflow1;
Geng et al. eq. 6 with their time reversed, hence the plus sign)

    u(x_t, t, r) = v(x_t, t) + (r - t) du/dt,     du/dt = ∂_x u · v + ∂_t u   (JVP along (v, 1, 0)).

Training (§6.2) regresses u_θ on sg(v + (r - t) du_θ/dt) with v = x1 - x0 the conditional
velocity; at r = t the target is v and the loss is flow matching. The network is the TimeMLP with
two scalar inputs, t and r - t. Everything works on tensors of shape (B, *dims).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..models import MLPConfig, TimeMLP
from ..paths import LinearPath, _bcast
from ..solvers import Solution, solve
from .fm import trailing_rows

TIME_SAMPLERS = ("uniform", "logit_normal")
TANGENTS = ("conditional", "model")


@dataclass(frozen=True)
class MeanFlowConfig:
    frac_neq: float = 0.25  # fraction of rows with r != t (Geng et al. Table 1a: 25 % is best)
    time_sampler: str = "logit_normal"  # or "uniform"
    mu: float = 0.4  # logit-normal lognormal(mu, sigma); Geng et al.'s (-0.4, 1) in our time
    sigma: float = 1.0
    p: float = 1.0  # adaptive weight w = 1 / (||Δ||² + c)^p (Geng et al. §4.3); 0: plain MSE
    c: float = 1e-3
    fm_warmup: int = 0  # warm start: the first steps train the same net as plain FM (r = t)
    # the JVP's x direction: "conditional" v = x1 - x0 (Geng et al. 2025), or "model" the net's
    # own v_θ(x_t, t) = u(x_t, t, t), an estimate of the marginal velocity without the pair's
    # noise (improved MeanFlow, Geng et al., Dec 2025); the regression target keeps x1 - x0
    tangent: str = "conditional"
    n_buckets: int = 5  # the loss is also logged per bucket of t (stability monitor)
    BOUNDS: ClassVar[dict] = {"frac_neq": (0.0, 1.0), "mu": (-10.0, 10.0), "sigma": (1e-3, 10.0),
                              "p": (0.0, 10.0), "c": (1e-8, 1e3), "fm_warmup": (0, 1_000_000),
                              "n_buckets": (1, 100)}  # what from_dict accepts

    def __post_init__(self):
        if not 0 <= self.frac_neq <= 1:
            raise ValueError("frac_neq must be in [0, 1]")
        if self.time_sampler not in TIME_SAMPLERS:
            raise ValueError(f"time_sampler must be one of {TIME_SAMPLERS}")
        if self.tangent not in TANGENTS:
            raise ValueError(f"tangent must be one of {TANGENTS}")
        if self.p < 0 or self.c <= 0:
            raise ValueError("need p >= 0 and c > 0")


class MeanVelocity(nn.Module):
    """u(x, t, r) = net(x, t, r - t): the TimeMLP with n_scalars = 2 (t and the interval r - t).

    ``velocity(x, t) = u(x, t, t)`` is the instantaneous field the same network learns at r = t,
    usable with flowviz.solvers.solve like any v(x, t)."""

    def __init__(self, cfg: MLPConfig | None = None):
        super().__init__()
        self.net = TimeMLP(dataclasses.replace(cfg or MLPConfig(emb_scale=20.0), n_scalars=2))

    def forward(self, x: torch.Tensor, t, r, **cond) -> torch.Tensor:
        return self.net(x, t, r - t, **cond)

    def velocity(self, x: torch.Tensor, t) -> torch.Tensor:
        return self(x, t, t)

    def jvp(self, x: torch.Tensor, t, r, dx: torch.Tensor, dt, dr):
        """(u(x, t, r), its derivative along (dx, dt, dr)): the TimeMLP's hand-written
        forward-mode pass (the interval r - t moves by dr - dt); other nets (a U-Net
        subclass) through torch.func.jvp."""
        if type(self.net) is TimeMLP:
            return self.net.jvp(x, (t, r - t), dx, (dt, dr - dt))
        return torch.func.jvp(self, (x, t, r), (dx, dt, dr))


def interval_rows(n: int, frac_neq: float) -> int:
    """How many of n rows get r != t: a fixed count, round(frac_neq n), not a coin per row, so
    a batch's shapes never change (CUDA graphs) and nothing is read back from the device."""
    return round(frac_neq * n)


def sample_times(n: int, cfg: MeanFlowConfig, generator=None, frac_neq: float | None = None):
    """(t, r), each (n,) on the generator's device: two draws from the time sampler, sorted so
    t <= r; r = t on the first n - k rows and the last k = :func:`interval_rows` rows keep
    r >= t (Geng et al. §4.3: a fraction of the batch; rows are i.i.d., so which ones is
    immaterial)."""
    dev = generator.device if generator is not None else "cpu"
    if cfg.time_sampler == "uniform":
        a = torch.rand(2, n, device=dev, generator=generator)
    else:
        a = torch.sigmoid(cfg.mu + cfg.sigma * torch.randn(2, n, device=dev, generator=generator))
    t, r = a.min(0).values, a.max(0).values
    s = n - interval_rows(n, cfg.frac_neq if frac_neq is None else frac_neq)
    return t, torch.cat([t[:s], r[s:]])


@torch.no_grad()
def meanflow_target(u, xt: torch.Tensor, t: torch.Tensor, r: torch.Tensor, v: torch.Tensor,
                    tangent: str = "conditional"):
    """u_tgt = v + (r - t) du/dt under stop-gradient (§6.2), with du/dt = [∂_x u, ∂_t u, ∂_r u] ·
    (v', 1, 0) from ONE forward-mode JVP (§6.1, eq. meanflow2). The x direction v' is v itself
    (``tangent="conditional"``) or the network's own instantaneous velocity u(x_t, t, t)
    (``"model"``: the iMF tangent, one more forward pass). Given x_t, the conditional direction
    averages to the marginal velocity, which u(x_t, t, t) estimates without the pair's noise.
    Returns (u_tgt, (r - t) du/dt)."""
    direction = v if tangent == "conditional" else u(xt, t, t)
    along = (direction, torch.ones_like(t), torch.zeros_like(r))
    if isinstance(u, MeanVelocity):  # its own forward mode (the TimeMLP's: no tracing)
        _, dudt = u.jvp(xt, t, r, *along)
    else:
        _, dudt = torch.func.jvp(u, (xt, t, r), along)
    term = _bcast(r - t, xt) * dudt
    return v + term, term


def meanflow_loss(u, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, r: torch.Tensor,
                  p: float = 1.0, c: float = 1e-3, path=LinearPath(), n_buckets: int = 0,
                  n_neq: int | None = None, target=meanflow_target,
                  tangent: str = "conditional"):
    """The MeanFlow loss on one batch and its parts.

    The last ``n_neq`` rows have r > t and regress on the identity's target (``target``: the
    JVP: :func:`meanflow_target`, or its CUDA-graphed copy, along ``tangent``); the rows before
    them have r = t and regress on v (flow matching: no JVP is spent on them; for r = t its term
    is 0 anyway).
    ``n_neq=None`` counts the rows with r > t (one read from the device) and checks they come
    last. Per row, Δ = u_θ - sg(u_tgt) and the loss is sg(w) ||Δ||², w = 1 / (||Δ||² + c)^p
    (adaptive weighting; p = 0 is plain MSE). Returns (loss, logs): "mse_fm" and "mse_mean"
    (plain ||Δ||² on each kind of row, NaN when a kind is absent), "jvp" and "jvp_max" (mean
    and max ||(r - t) du/dt|| over the r > t rows) and, with n_buckets, "mse_t<k>" (plain ||Δ||²
    per bucket of t, NaN for an empty bucket). Nothing here waits for the device."""
    b = len(t)
    if n_neq is None:
        n_neq = trailing_rows(r > t, "r > t")
    s = b - n_neq
    xt, v = path.interpolate(x0, x1, t), path.velocity(x0, x1, t)
    nan = x0.new_tensor(float("nan"))
    goal, jvp, jvp_max = v, nan, nan
    if n_neq:
        tgt, term = target(u, xt[s:], t[s:], r[s:], v[s:], tangent)
        goal = torch.cat([v[:s], tgt])
        norms = term.flatten(1).norm(dim=1)
        jvp, jvp_max = norms.mean(), norms.max()
    err = (u(xt, t, r) - goal).pow(2).flatten(1).sum(1)
    w = (err.detach() + c).pow(-p) if p > 0 else torch.ones_like(err)
    e = err.detach()
    logs = {"mse_fm": e[:s].mean() if s else nan, "mse_mean": e[s:].mean() if n_neq else nan,
            "jvp": jvp, "jvp_max": jvp_max}
    if n_buckets:
        k = (t * n_buckets).long().clamp(0, n_buckets - 1)
        total = torch.zeros(n_buckets, dtype=e.dtype, device=e.device).index_add_(0, k, e)
        mean = total / torch.bincount(k, minlength=n_buckets).to(e.dtype)  # 0 / 0: NaN
        logs.update({f"mse_t{i}": mean[i] for i in range(n_buckets)})
    return (w * err).mean(), logs


def bucket_label(i: int, n: int) -> str:
    return f"t ∈ [{i / n:.1f}, {(i + 1) / n:.1f}{']' if i == n - 1 else ')'}"


class MeanFlowObjective:
    """An objective for flowviz.train: coupled pairs, (t, r) from :func:`sample_times`, the
    MeanFlow loss; logs its parts. Warm start: the first ``cfg.fm_warmup`` calls use r = t only,
    i.e. train the same network as a plain flow-matching model v(x, t) = u(x, t, t).
    ``target`` computes the JVP target; image runs on a GPU replay
    :func:`meanflow_target` as one CUDA graph (flowviz.images.experiment.build_image)."""

    def __init__(self, sample_x0, sample_x1, batch: int, cfg: MeanFlowConfig | None = None,
                 coupling: str = "independent", path=LinearPath()):
        self.sample_x0, self.sample_x1, self.batch = sample_x0, sample_x1, batch
        self.cfg, self.coupling, self.path = cfg or MeanFlowConfig(), coupling, path
        self.calls = 0
        self.target = meanflow_target

    def __call__(self, model, g):
        from ..data import couple

        cfg = self.cfg
        dev = next(model.parameters()).device
        x0, x1 = couple(self.coupling, self.sample_x0(self.batch, g)[0].to(dev),
                        self.sample_x1(self.batch, g)[0].to(dev))
        warm = self.calls < cfg.fm_warmup
        self.calls += 1
        frac = 0.0 if warm else cfg.frac_neq
        t, r = sample_times(self.batch, cfg, g, frac)
        loss, logs = meanflow_loss(model, x0, x1, t.to(dev), r.to(dev), cfg.p, cfg.c, self.path,
                                   cfg.n_buckets, interval_rows(self.batch, frac), self.target,
                                   cfg.tangent)
        return loss, {k: v.detach() for k, v in logs.items()}


def sample(u, x0: torch.Tensor, steps: int = 1, t0: float = 0.0, t1: float = 1.0,
           return_traj: bool = False) -> Solution:
    """Few-step MeanFlow sampling (§6): x_r = x_t + (r - t) u(x_t, t, r) on ``steps`` equal
    intervals from t0 to t1; exactly ``steps`` network calls (Solution.nfe)."""
    with torch.no_grad():
        ts = torch.linspace(t0, t1, steps + 1, device=x0.device, dtype=x0.dtype)
        x, xs = x0, [x0]
        for i in range(steps):
            t, r = ts[i].expand(len(x)), ts[i + 1].expand(len(x))
            x = x + (ts[i + 1] - ts[i]) * u(x, t, r)
            xs.append(x)
    return Solution(x, steps, torch.stack(xs) if return_traj else None,
                    ts if return_traj else None)


def sampler(u):
    """``(x0, nfe) -> Solution``: the few-step sampler spending exactly ``nfe`` calls."""
    return lambda x0, nfe: sample(u, x0, nfe)


@torch.no_grad()
def trajectory(field, x: torch.Tensor, t0: float = 0.0, steps: int = 64) -> Solution:
    """The flow of an instantaneous field v(x, t) from x (N, *dims) at t0 to 1 (RK4)."""
    return solve(field, x, "rk4", steps, t0=t0, return_traj=True)


def mean_velocity_table(traj: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    """Mean velocities along trajectories (T, N, *dims) on times ts (T,): U[i, j] = (x_j - x_i) /
    (t_j - t_i) = 1/(t_j - t_i) ∫ v dτ for j > i (the exact u(x_{t_i}, t_i, t_j) of the flow that
    produced traj); NaN for j <= i. Shape (T, T, N, *dims)."""
    dt = ts[None, :] - ts[:, None]
    dx = traj[None, :] - traj[:, None]
    dt = torch.where(dt > 0, dt, torch.full_like(dt, float("nan")))
    return dx / dt.reshape(*dt.shape, *([1] * (traj.dim() - 1)))


@torch.no_grad()
def mean_vs_instantaneous(field, x0: torch.Tensor, steps: int = 40, substeps: int = 1) -> dict:
    """Both velocities along the flow of ``field`` v(x, t) from x0 (N, *dims) at t = 0 (§6), on
    the grid of ``steps`` equal steps (each integrated as ``substeps`` RK4 steps):
    "ts" (T,), "traj" (T, N, *dims), "v" (T, N, *dims) = v(x_τ, τ) at every trajectory point,
    and "u" (T, T, N, *dims) = the mean velocity u(x_{t_i}, t_i, t_j) of that flow (j > i; the
    diagonal is filled with v, its limit r -> t; NaN below it)."""
    sol = trajectory(field, x0, steps=steps * substeps)
    traj, ts = sol.traj[::substeps], sol.ts[::substeps]
    T, N = traj.shape[:2]
    v = field(traj.reshape(T * N, *traj.shape[2:]), ts.repeat_interleave(N)).reshape(traj.shape)
    u = mean_velocity_table(traj, ts)
    k = torch.arange(T)
    u[k, k] = v
    return {"ts": ts, "traj": traj, "v": v, "u": u}


@torch.no_grad()
def model_table(u, traj: torch.Tensor, ts: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """u(x_{t_i}, t_i, t_j) at the trajectory points for all i <= j (NaN below the diagonal):
    (T, T, N, *dims), evaluated in batches of ``chunk`` rows."""
    T, N = traj.shape[:2]
    i, j = torch.triu_indices(T, T)
    x = traj[i].reshape(-1, *traj.shape[2:])
    t = ts[i].repeat_interleave(N)
    r = ts[j].repeat_interleave(N)
    out = torch.cat([u(x[k:k + chunk], t[k:k + chunk], r[k:k + chunk])
                     for k in range(0, len(x), chunk)])
    table = torch.full((T, T, *traj.shape[1:]), float("nan"), dtype=traj.dtype,
                       device=traj.device)
    table[i, j] = out.reshape(len(i), *traj.shape[1:])
    return table


@torch.no_grad()
def identity_check(u, x0: torch.Tensor, n_times: int = 21, steps_per_interval: int = 4) -> dict:
    """The definition u(x_t, t, r) = 1/(r - t) ∫_t^r v dτ checked on a trained model (§6).

    v(x, t) = u(x, t, t) is the model's own instantaneous field; its trajectories from x0 are
    integrated with RK4 (``steps_per_interval`` steps between consecutive grid times), and the
    integral's average (x_r - x_t)/(r - t) is compared with the network's direct answer
    u(x_t, t, r) at every grid pair t < r. Returns ts (T,), traj (T, N, *dims), the two tables
    (T, T, N, *dims) "integral" and "model", and "err" (T, T): the mean ||model - integral|| over
    the trajectories (NaN for r <= t), and "rel" the same divided by mean ||integral||."""
    sol = trajectory(u.velocity, x0, steps=(n_times - 1) * steps_per_interval)
    traj, ts = sol.traj[::steps_per_interval], sol.ts[::steps_per_interval]
    integral, model = mean_velocity_table(traj, ts), model_table(u, traj, ts)
    diff = (model - integral).flatten(3).norm(dim=-1).mean(-1)
    size = integral.flatten(3).norm(dim=-1).mean(-1)
    return {"ts": ts, "traj": traj, "integral": integral, "model": model, "err": diff,
            "rel": diff / size}


@torch.no_grad()
def error_vs_interval(models: dict, field, x0: torch.Tensor, steps: int = 20,
                      substeps: int = 1) -> tuple[torch.Tensor, dict]:
    """How well models of the interval average u(x, t, r) match the true one, by interval length
    (§6.3: Shortcut's s(x, t, d) and MeanFlow's u(x, t, t + d) estimate the same quantity).

    The reference is the mean velocity of ``field``'s flow from x0 (:func:`mean_vs_instantaneous`
    on a grid of ``steps``); ``models`` maps a label to ``f(x, t, r)``. Returns the interval
    lengths d (steps,) = k / steps and, per label, the mean ||f(x_t, t, t + d) - u(x_t, t, t + d)||
    over all grid pairs with that d and all trajectories, (steps,)."""
    ref = mean_vs_instantaneous(field, x0, steps, substeps)
    ts, traj = ref["ts"], ref["traj"]
    i, j = torch.triu_indices(len(ts), len(ts), offset=1)
    k = j - i  # interval length in grid steps, 1..steps
    truth = ref["u"][i, j]  # (P, N, *dims)
    out = {}
    for label, f in models.items():
        pred = model_table(f, traj, ts)[i, j]
        err = (pred - truth).flatten(2).norm(dim=-1).mean(-1)  # (P,)
        s = torch.zeros(steps + 1, dtype=err.dtype).index_add_(0, k, err)
        out[label] = (s / torch.bincount(k, minlength=steps + 1).clamp_min(1))[1:]
    return torch.arange(1, steps + 1, dtype=ts.dtype) / steps, out


def one_step_error(u, x0: torch.Tensor, steps: int = 64) -> dict:
    """Per start point: the one-step jump x0 + u(x0, 0, 1) against the end of the model's own
    flow of v = u(·, t, t) from x0 (RK4). Returns "jump", "flow" (N, *dims) and "err" (N,)."""
    with torch.no_grad():
        z = torch.zeros(len(x0), device=x0.device, dtype=x0.dtype)
        jump = x0 + u(x0, z, z + 1)
    flow = trajectory(u.velocity, x0, steps=steps).x
    return {"jump": jump, "flow": flow, "err": (jump - flow).flatten(1).norm(dim=1)}


def logit_normal_pdf(t: torch.Tensor, mu: float, sigma: float) -> torch.Tensor:
    """Density of sigmoid(N(mu, sigma²)) on (0, 1) (for drawing the time sampler)."""
    lg = torch.log(t / (1 - t))
    return torch.exp(-((lg - mu) ** 2) / (2 * sigma**2)) / (
        sigma * math.sqrt(2 * math.pi) * t * (1 - t))
