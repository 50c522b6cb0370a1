"""k-rectified flow: reflow rounds and the improved 2-RF training (article §3, §3.1).

Reflow (Liu et al. 2022, §3 "reflow"; article eq. 6): given the k-RF field v^(k),

    1. pairs   (x0, x1') with x1' = x0 + ∫_0^1 v^(k)(x_t, t) dt       (solve the ODE, x0 ~ p_0)
    2. train   v^(k+1) = argmin_v E_t E || (x1' - x0) - v((1 - t) x0 + t x1', t) ||^2

with flowviz.methods.fm.fm_loss on the new, deterministic coupling. Lee, Lin & Fanti 2024
("Improving the Training of Rectified Flows", NeurIPS 2024; article §3.1) train that one round
better: a U-shaped time distribution, a pseudo-Huber loss (LPIPS-Huber on images), initialising
v^(2) from v^(1), and mixing real data in through its inverted noise. Every function works on
tensors of any shape (B, *dims), with optional per-sample conditions (class labels, prompts).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

import torch

from ..paths import LinearPath
from ..solvers import solve
from ..train import OptimConfig, TrainState, init_state
from .fm import fm_loss, squared_error, uniform_t

# --- time distributions p_t: (b, like, generator) -> t (b,), on like's device and dtype -------


def _rand(b: int, like: torch.Tensor, generator) -> torch.Tensor:
    dev = generator.device if generator is not None else like.device
    return torch.rand(b, device=dev, generator=generator, dtype=torch.float64)


def u_shaped_t(b: int, like: torch.Tensor, generator=None, a: float = 4.0) -> torch.Tensor:
    """U-shaped p_t(t) ∝ exp(a t) + exp(a (1 - t)) ∝ cosh(a (t - 1/2)) on [0, 1] (Lee et al. 2024,
    §4.1; a = 4 there): more weight at both ends, where 2-RF's loss is largest.

    The paper writes p_t(u) ∝ exp(au) + exp(-au), which read literally on [0, 1] is cosh(a u):
    increasing, not U-shaped. Its released code (sangyun884/rfpp, t_dist.py) draws the truncated
    exponential a e^{a u} / (e^a - 1) and flips it to 1 - u with probability 1/2, i.e. the
    symmetric density above; that is what this implements (exactly, by the inverse CDF)."""
    r, flip = _rand(b, like, generator), _rand(b, like, generator)
    if a == 0:
        u = r
    else:  # inverse CDF of the truncated exponential on [0, 1]
        u = torch.log1p(r * math.expm1(a)) / a
    return torch.where(flip < 0.5, u, 1 - u).to(like.device, like.dtype)


def u_shaped_pdf(t: torch.Tensor, a: float = 4.0) -> torch.Tensor:
    """The density of u_shaped_t: a (e^{a t} + e^{a (1 - t)}) / (2 (e^a - 1))."""
    if a == 0:
        return torch.ones_like(t)
    return a * (torch.exp(a * t) + torch.exp(a * (1 - t))) / (2 * math.expm1(a))


def logit_normal_t(b: int, like: torch.Tensor, generator=None, mean: float = 0.0,
                   std: float = 1.0) -> torch.Tensor:
    """t = sigmoid(mean + std n), n ~ N(0, 1) (Esser et al. 2024, SD3): weight in the middle."""
    dev = generator.device if generator is not None else like.device
    n = torch.randn(b, device=dev, generator=generator, dtype=torch.float64)
    return torch.sigmoid(mean + std * n).to(like.device, like.dtype)


def logit_normal_pdf(t: torch.Tensor, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    z = (torch.logit(t) - mean) / std
    return torch.exp(-0.5 * z**2) / (std * math.sqrt(2 * math.pi) * t * (1 - t))


T_DISTS = ("uniform", "u_shaped", "logit_normal")


def time_sampler(name: str, a: float = 4.0, mean: float = 0.0, std: float = 1.0):
    """The sampler ``(b, like, generator) -> t`` of a T_DISTS name with its parameters."""
    if name == "uniform":
        return uniform_t
    if name == "u_shaped":
        return partial(u_shaped_t, a=a)
    if name == "logit_normal":
        return partial(logit_normal_t, mean=mean, std=std)
    raise ValueError(f"unknown time distribution {name!r}; choose from {T_DISTS}")


def time_pdf(name: str, t: torch.Tensor, a: float = 4.0, mean: float = 0.0, std: float = 1.0):
    """The density of time_sampler(name, ...) at t (the analytic curve drawn over histograms)."""
    if name == "uniform":
        return torch.ones_like(t)
    if name == "u_shaped":
        return u_shaped_pdf(t, a)
    if name == "logit_normal":
        return logit_normal_pdf(t, mean, std)
    raise ValueError(f"unknown time distribution {name!r}; choose from {T_DISTS}")


# --- per-sample losses ell: residual (B, *dims) -> (B,) -----------------------------------------


def pseudo_huber(r: torch.Tensor, c: float) -> torch.Tensor:
    """sqrt(||r||^2 + c^2) - c (Lee et al. 2024, §4.2; Song & Dhariwal 2023): ~||r||^2 / (2c)
    for small residuals, ~||r|| for large ones, so outlier pairs pull less on the gradient."""
    return torch.sqrt(squared_error(r) + c * c) - c


def huber_c(dim: int) -> float:
    """Lee et al.'s constant c = 0.00054 d for data of dimension d (CIFAR-10: c ≈ 1.66)."""
    return 0.00054 * dim


LOSSES = ("squared", "pseudo_huber")


def loss_fn(name: str, c: float = 0.01):
    """The per-sample loss of a LOSSES name (``c``: the pseudo-Huber constant)."""
    if name == "squared":
        return squared_error
    if name == "pseudo_huber":
        return partial(pseudo_huber, c=c)
    raise ValueError(f"unknown loss {name!r}; choose from {LOSSES}")


# --- pairs: solve the flow's ODE, in chunks --------------------------------------------------


@dataclass
class Pairs:
    """A deterministic coupling: x1[i] is where the flow takes x0[i] (or x0[i] is where the
    backward flow takes data x1[i]). Shapes (N, *dims); ``cond``: per-pair conditions (N, ...)."""

    x0: torch.Tensor
    x1: torch.Tensor
    cond: dict = field(default_factory=dict)
    nfe: int = 0  # field evaluations, summed over chunks (each on a whole chunk)
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.x0)


@dataclass
class PairGeneration:
    """Resumable batched solve of dx/dt = field(x, t) from t0 to t1 for every row of ``x``
    (any shape (N, *dims)), ``chunk`` rows per call: a page advances it between reruns and can
    pause. Any flowviz.solvers method: fixed-step ones take ``steps`` steps, adaptive ones use
    rtol = atol = ``tol``. t0 = 0, t1 = 1 generates (noise -> data); t0 = 1, t1 = 0 inverts."""

    field: object
    x: torch.Tensor
    method: str = "dopri5"
    steps: int = 64
    tol: float = 1e-5
    chunk: int = 4096
    t0: float = 0.0
    t1: float = 1.0
    cond: dict = field(default_factory=dict)
    out: list = field(default_factory=list)
    nfe: int = 0
    seconds: float = 0.0
    chunk_nfe: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # free-form labels (UI, presets)

    @property
    def n_done(self) -> int:
        return sum(len(o) for o in self.out)

    @property
    def done(self) -> bool:
        return self.n_done >= len(self.x)

    @property
    def progress(self) -> float:
        return self.n_done / max(1, len(self.x))

    @torch.no_grad()
    def advance(self, n_chunks: int = 1) -> PairGeneration:
        for _ in range(n_chunks):
            i = self.n_done
            if i >= len(self.x):
                break
            j = min(len(self.x), i + self.chunk)
            c = {k: v[i:j] for k, v in self.cond.items()}
            f = partial(self.field, **c) if c else self.field
            t = time.perf_counter()
            s = solve(f, self.x[i:j], self.method, self.steps, t0=self.t0, t1=self.t1,
                      rtol=self.tol, atol=self.tol)
            self.seconds += time.perf_counter() - t
            self.out.append(s.x)
            self.nfe += s.nfe
            self.chunk_nfe.append(s.nfe)
        return self

    def run(self) -> PairGeneration:
        while not self.done:
            self.advance()
        return self

    def result(self) -> Pairs:
        """The pairs, ordered (noise, data) whichever way the ODE was solved."""
        if not self.done:
            raise RuntimeError("pair generation is not finished: call advance() or run()")
        end = torch.cat(self.out) if self.out else self.x[:0]
        x0, x1 = (self.x, end) if self.t0 < self.t1 else (end, self.x)
        return Pairs(x0, x1, dict(self.cond), self.nfe, self.seconds)


def generate_pairs(field, x0: torch.Tensor, method: str = "dopri5", steps: int = 64,
                   tol: float = 1e-5, chunk: int = 4096, **cond) -> Pairs:
    """(x0, x1' = Phi(x0)) by solving the ODE of ``field`` from t = 0 to 1 (reflow step 1)."""
    return PairGeneration(field, x0, method, steps, tol, chunk, 0.0, 1.0, cond).run().result()


def invert(field, x1: torch.Tensor, method: str = "dopri5", steps: int = 64, tol: float = 1e-5,
           chunk: int = 4096, **cond) -> Pairs:
    """Data -> noise: (z = Phi^{-1}(x1), x1) by solving the ODE backward from t = 1 to 0."""
    return PairGeneration(field, x1, method, steps, tol, chunk, 1.0, 0.0, cond).run().result()


# --- the (k+1)-RF objective and training driver -------------------------------------------------


def reflow_objective(pairs: Pairs, batch: int, t=None, loss=None, real: Pairs | None = None,
                     p_real: float = 0.0, path=LinearPath(), weights: torch.Tensor | None = None):
    """An objective for flowviz.train on a fixed coupling: ``batch`` pairs drawn with
    replacement (uniformly, or with probabilities ∝ ``weights`` (N,)), each replaced with
    probability ``p_real`` by a real pair (real data x1 with the noise the previous flow maps to
    it, from ``invert``; Lee et al. 2024, §4.4). ``t`` and ``loss`` as in fm_loss. Logs the
    fraction of real pairs used."""
    if p_real > 0 and (real is None or len(real) == 0):
        raise ValueError("p_real > 0 needs real pairs (flowviz.methods.reflow.invert)")

    def objective(model, g):
        dev = next(model.parameters()).device
        idx = torch.randint(0, len(pairs), (batch,), generator=g) if weights is None else \
            torch.multinomial(weights.cpu().double(), batch, replacement=True, generator=g)
        x0, x1 = pairs.x0[idx.to(pairs.x0.device)], pairs.x1[idx.to(pairs.x1.device)]
        cond = {k: v[idx.to(v.device)] for k, v in pairs.cond.items()}
        logs = {}
        if p_real > 0:
            use = torch.rand(batch, generator=g) < p_real
            j = torch.randint(0, len(real), (batch,), generator=g)
            m = use.reshape(-1, *([1] * (x0.dim() - 1))).to(x0.device)
            x0 = torch.where(m, real.x0[j.to(real.x0.device)], x0)
            x1 = torch.where(m, real.x1[j.to(real.x1.device)], x1)
            for k, v in cond.items():
                mk = use.reshape(-1, *([1] * (v.dim() - 1))).to(v.device)
                cond[k] = torch.where(mk, real.cond[k][j.to(v.device)], v)
            logs["real_fraction"] = float(use.double().mean())
        cond = {k: v.to(dev) for k, v in cond.items()}
        return fm_loss(model, x0.to(dev), x1.to(dev), t, path, loss, generator=g, **cond), logs

    return objective


@dataclass(frozen=True)
class ReflowConfig:
    """One reflow round: how pairs are made from the k-RF model and how the (k+1)-RF trains.
    The defaults are the 2-D recipe measured by benchmarks/bench_reflow.py after a 1-RF trained
    with flowviz.experiment.FAST_1RF: 10 000 dopri5 pairs, then 2000 steps at lr 3e-3, batch
    1024, U-shaped t, initialised from the 1-RF, EMA 0.999."""

    n_pairs: int = 10_000
    solver: str = "dopri5"  # any flowviz.solvers method
    steps: int = 64  # fixed-step solvers
    tol: float = 1e-4  # adaptive solvers (rtol = atol)
    chunk: int = 5000  # rows solved per call
    t_dist: str = "u_shaped"  # a T_DISTS name
    a: float = 4.0  # U-shaped parameter (Lee et al. 2024 use 4)
    ln_mean: float = 0.0  # logit-normal location
    ln_std: float = 1.0  # logit-normal scale
    loss: str = "squared"  # a LOSSES name
    c: float = 0.0  # pseudo-Huber constant; 0: Lee et al.'s 0.00054 d
    p_real: float = 0.0  # probability of a real (inverted) pair per batch item
    n_real: int = 0  # real points to invert (0: n_pairs)
    init: str = "previous"  # "previous": start from the k-RF weights (Lee et al.), or "scratch"
    batch: int = 1024
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(steps=2000, lr=3e-3))
    # what from_dict accepts (flowviz.config); a 2-D ReflowRun's own limits are its check
    BOUNDS: ClassVar[dict] = {"n_pairs": (1, 1_000_000), "steps": (1, 10_000),
                              "tol": (1e-10, 1.0), "chunk": (1, 1_000_000), "a": (0.0, 100.0),
                              "ln_mean": (-10.0, 10.0), "ln_std": (1e-3, 10.0), "c": (0.0, 10.0),
                              "p_real": (0.0, 1.0), "n_real": (0, 1_000_000),
                              "batch": (1, 65_536)}

    def sampler(self):
        return time_sampler(self.t_dist, self.a, self.ln_mean, self.ln_std)

    def loss_fn(self, dim: int):
        return loss_fn(self.loss, self.c or huber_c(dim))


def pair_generation(model, x: torch.Tensor, cfg: ReflowConfig, backward: bool = False,
                    **cond) -> PairGeneration:
    """A resumable PairGeneration with cfg's solver: noise -> data, or data -> noise."""
    t0, t1 = (1.0, 0.0) if backward else (0.0, 1.0)
    return PairGeneration(model, x, cfg.solver, cfg.steps, cfg.tol, cfg.chunk, t0, t1, cond)


@dataclass
class PairPhase:
    """Reflow step 1 as one resumable job: the k-RF ODE solved forward from noise x0 (the new
    coupling) and, when real data is given, backward from it (the real pairs that cfg.p_real
    mixes in). ``advance(k)`` solves k more chunks; pages keep it between reruns."""

    forward: PairGeneration
    backward: PairGeneration | None = None
    meta: dict = field(default_factory=dict)
    history: list = field(default_factory=list)  # no loss curve: pairs are solved, not trained

    @property
    def jobs(self) -> list[PairGeneration]:
        return [g for g in (self.forward, self.backward) if g is not None]

    @property
    def done(self) -> bool:
        return all(g.done for g in self.jobs)

    @property
    def status(self) -> str:
        return "done" if self.done else "running" if self.n_done else "ready"

    @property
    def n_done(self) -> int:
        return sum(g.n_done for g in self.jobs)

    @property
    def n_total(self) -> int:
        return sum(len(g.x) for g in self.jobs)

    @property
    def seconds(self) -> float:
        return sum(g.seconds for g in self.jobs)

    @property
    def nfe(self) -> int:
        return sum(g.nfe for g in self.jobs)

    def advance(self, k: int = 1) -> PairPhase:
        for _ in range(k):
            todo = [g for g in self.jobs if not g.done]
            if not todo:
                break
            todo[0].advance()
        return self

    def run(self) -> PairPhase:
        while not self.done:
            self.advance()
        return self

    def result(self) -> tuple[Pairs, Pairs | None]:
        """(the generated pairs, the real pairs or None)."""
        return self.forward.result(), self.backward.result() if self.backward else None


def pair_phase(prev: torch.nn.Module, x0: torch.Tensor, cfg: ReflowConfig,
               x1_real: torch.Tensor | None = None, real_cond: dict | None = None,
               **cond) -> PairPhase:
    """The pair phase of a reflow round from the k-RF model ``prev``: forward from x0, and
    backward from the first cfg.n_real (0: all) rows of ``x1_real`` when it is given."""
    prev = prev.eval()
    back = None
    if x1_real is not None:
        n = cfg.n_real or len(x1_real)
        rc = {k: v[:n] for k, v in (real_cond or {}).items()}
        back = pair_generation(prev, x1_real[:n], cfg, backward=True, **rc)
    return PairPhase(pair_generation(prev, x0, cfg, **cond), back)


def init_model(prev: torch.nn.Module, cfg: ReflowConfig) -> torch.nn.Module:
    """The (k+1)-RF network: a trainable copy of the k-RF weights, or of its architecture with
    fresh weights (every submodule's reset_parameters, seeded by cfg.optim.seed)."""
    model = copy.deepcopy(prev).requires_grad_(True).train()
    if cfg.init == "scratch":
        torch.manual_seed(cfg.optim.seed)
        for m in model.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    elif cfg.init != "previous":
        raise ValueError(f"unknown init {cfg.init!r}; choose 'previous' or 'scratch'")
    return model


def reflow_state(prev: torch.nn.Module, pairs: Pairs, cfg: ReflowConfig,
                 real: Pairs | None = None, round_k: int = 2,
                 weights: torch.Tensor | None = None) -> TrainState:
    """The TrainState of the (k+1)-RF trained on ``pairs`` (and ``real`` pairs with prob.
    cfg.p_real), its network initialised from ``prev`` per cfg.init; ``weights``: per-pair
    sampling weights (None: uniform). The pairs and their cost are kept in ``state.meta``."""
    dim = pairs.x0[0].numel()
    objective = reflow_objective(pairs, cfg.batch, cfg.sampler(), cfg.loss_fn(dim), real,
                                 cfg.p_real if real is not None else 0.0, weights=weights)
    state = init_state(init_model(prev, cfg), objective, cfg.optim)
    state.meta.update(round=round_k, pairs=pairs, real=real, pair_seconds=pairs.seconds
                      + (real.seconds if real is not None else 0.0), pair_nfe=pairs.nfe)
    return state


def next_round(prev: torch.nn.Module, x0: torch.Tensor, cfg: ReflowConfig,
               x1_real: torch.Tensor | None = None, round_k: int = 2, real_cond: dict | None = None,
               **cond) -> TrainState:
    """Reflow once (the k-RF training driver): solve the k-RF ODE from x0 (N, *dims) for the
    pairs, invert ``x1_real`` when cfg.p_real > 0, and return the untrained (k+1)-RF state.
    Train it with flowviz.train.train_steps; its ``sampler_model`` is the next ``prev``.
    ``cond`` / ``real_cond``: per-sample conditions of x0 / x1_real (e.g. ``label=``)."""
    if cfg.p_real > 0 and x1_real is None:
        raise ValueError("cfg.p_real > 0 needs real data x1_real to invert")
    phase = pair_phase(prev, x0, cfg, x1_real if cfg.p_real > 0 else None, real_cond, **cond)
    pairs, real = phase.run().result()
    return reflow_state(prev, pairs, cfg, real, round_k)


def segment_crossing(a0: torch.Tensor, a1: torch.Tensor, b0: torch.Tensor,
                     b1: torch.Tensor) -> dict:
    """Where the 2-D pair lines a0 -> a1 and b0 -> b1 meet (the article's §3.1 argument).

    Returns ``crosses`` (the segments intersect), the times ``t_a``, ``t_b`` at which each line
    passes the intersection (x = (1 - t) x0 + t x1), the ``point``, and ``angle``: the angle (in
    degrees) between a1 - b1 and b0 - a0. The two paths are at the same place at the *same* time
    t only if a1 - b1 = -((1 - t) / t)(a0 - b0), i.e. angle = 0: a coincidence of measure zero
    for a deterministic coupling, which is why rectified pairs hardly collide."""
    a0, a1, b0, b1 = (torch.as_tensor(v, dtype=torch.float64) for v in (a0, a1, b0, b1))
    da, db, w = a1 - a0, b1 - b0, b0 - a0
    den = da[0] * db[1] - da[1] * db[0]
    if abs(float(den)) < 1e-12:  # parallel lines
        t_a = t_b = float("nan")
    else:
        t_a = float((w[0] * db[1] - w[1] * db[0]) / den)
        t_b = float((w[0] * da[1] - w[1] * da[0]) / den)
    crosses = 0 <= t_a <= 1 and 0 <= t_b <= 1
    u, v = a1 - b1, b0 - a0
    cos = float(u @ v / (u.norm() * v.norm()).clamp_min(1e-30))
    return {"crosses": crosses, "t_a": t_a, "t_b": t_b,
            "point": (a0 + t_a * da).tolist() if crosses else None,
            "angle": math.degrees(math.acos(max(-1.0, min(1.0, cos))))}
