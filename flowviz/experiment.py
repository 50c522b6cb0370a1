"""A whole 1-rectified-flow experiment as one frozen, JSON-serialisable config.

The page's "Train live", the CLI and the benchmark all build their training state here, so the
same config gives the same run everywhere.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from .config import SEED, JSONConfig
from .data import COUPLINGS, MAX_POINTS, SAMPLERS, points_sampler, sample
from .methods.fm import fm_objective
from .methods.instaflow import InstaFlowPipeline, InstaFlowRun
from .methods.meanflow import MeanFlowConfig, MeanFlowObjective, MeanVelocity
from .methods.reflow import LOSSES, T_DISTS, ReflowConfig, pair_phase, reflow_state
from .methods.shortcut import ShortcutConfig, ShortcutObjective
from .models import MLPConfig, TimeMLP
from .solvers import METHODS
from .train import OptimConfig, TrainState, init_state


@dataclass(frozen=True)
class FMRun(JSONConfig):
    source: str = "gaussian"  # a flowviz.data.SAMPLERS name, or "upload"
    target: str = "moons"
    coupling: str = "independent"  # or "ot" (minibatch optimal transport)
    n_data: int = 0  # 0: fresh target samples every batch; N: a fixed set of N points
    data_seed: int = 0
    h: float = 0.0  # fixed sets are widened into N(y_i, h^2 I), as in flowviz.exact
    batch: int = 512
    model: MLPConfig = field(default_factory=MLPConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    BOUNDS: ClassVar[dict] = {"n_data": (0, MAX_POINTS), "data_seed": SEED, "h": (0.0, 1.0),
                              "batch": (1, 8192)}  # what from_dict accepts; check: the rest

    def check(self) -> None:
        """Values a run can train with, within what one shared classroom server should run."""
        names = (*SAMPLERS, UPLOAD)
        for side in ("source", "target"):
            if getattr(self, side) not in names:
                raise ValueError(f"{side} must be one of {', '.join(names)}")
        if self.coupling not in COUPLINGS:
            raise ValueError(f"coupling must be one of {COUPLINGS}")
        m, o = self.model, self.optim
        _within("model.dim", m.dim, 2, 2)  # these runs are 2-D
        _within("model.hidden", m.hidden, 1, 1024)
        _within("model.depth", m.depth, 1, 8)
        _within("model.emb", m.emb, 2, 512)
        _within("optim.steps", o.steps, 1, 100_000)
        _within("optim.lr", o.lr, 1e-8, 1.0)
        _within("optim.warmup", o.warmup, 0, 100_000)
        _within("optim.ema", o.ema, 0.0, 0.99999)
        if o.schedule not in ("cosine", "constant"):
            raise ValueError("optim.schedule must be 'cosine' or 'constant'")

    def target_points(self, uploaded: torch.Tensor | None = None) -> torch.Tensor | None:
        """The fixed training set (the empirical p_data of flowviz.exact): the uploaded points
        when target == "upload", else n_data samples of the target (None when n_data == 0)."""
        if self.target == UPLOAD:
            return _need(uploaded)
        return sample(self.target, self.n_data, self.data_seed)[0] if self.n_data else None


UPLOAD = "upload"


def _within(name: str, v, lo, hi) -> None:
    if not lo <= v <= hi:
        raise ValueError(f"{name} = {v} is outside [{lo}, {hi}]")


# A fast 1-rectified flow for 2-D toys: N(0, I) -> moons comes within energy distance 0.004
# (100-step Euler, 4000 samples) in ~250 steps, about 1 s of training on 2 CPU cores. A small
# net, a large batch and a high peak lr (short warm-up, cosine to 5 %, clipped); sampling from
# the EMA copy (its warm-up averages about the last 10 % of steps) keeps it there afterwards.
# Chosen by benchmarks/tune_fm.py; benchmarks/bench_fm.py measures it (benchmarks/RESULTS.md).
FAST_1RF = FMRun(batch=1024, model=MLPConfig(hidden=64),
                 optim=OptimConfig(steps=700, lr=2e-2, warmup=30))


def _need(points):
    if points is None:
        raise ValueError("this config uses uploaded points: pass them as `uploaded`")
    return points


def sampler_for(name: str, uploaded: torch.Tensor | None = None):
    """The (n, g) -> (x, labels) sampler of a dataset name, or of the uploaded points."""
    return points_sampler(_need(uploaded)) if name == UPLOAD else SAMPLERS[name]


def data_samplers(cfg: FMRun, uploaded: torch.Tensor | None = None):
    """(sample_x0, sample_x1) of a run: the source, and the target or its fixed point set."""
    pts = cfg.target_points(uploaded)
    x1 = points_sampler(pts, cfg.h) if pts is not None else sampler_for(cfg.target)
    return sampler_for(cfg.source, uploaded), x1


def seeded_state(cfg: FMRun, net, objective, device="cpu") -> TrainState:
    """A fresh training state: the network ``net(cfg.model)``, whose initial weights depend on
    cfg.optim.seed alone, trained on ``objective``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.optim.seed)
        model = net(cfg.model).to(device)
    return init_state(model, objective, cfg.optim)


def build_fm(cfg: FMRun, device="cpu", uploaded: torch.Tensor | None = None) -> TrainState:
    """A fresh training state for ``cfg``; ``uploaded`` serves a side named "upload"."""
    return seeded_state(cfg, TimeMLP, fm_objective(*data_samplers(cfg, uploaded), cfg.batch,
                                                   cfg.coupling), device)


@dataclass(frozen=True)
class ShortcutRun(FMRun):
    """A shortcut-model run (article §5): the data, network (two scalar inputs t, d) and optimiser
    of an FMRun, plus the shortcut settings."""

    model: MLPConfig = field(default_factory=lambda: MLPConfig(n_scalars=2))
    shortcut: ShortcutConfig = field(default_factory=ShortcutConfig)

    def __post_init__(self):
        if self.model.n_scalars != 2:
            raise ValueError("a shortcut model s(x, t, d) has two scalar inputs: n_scalars=2")

    def fm_baseline(self, steps: int | None = None) -> FMRun:
        """The plain FM run on the same data with the same network (t input only); ``steps``
        changes its length (e.g. to match the shortcut run's training time)."""
        optim = self.optim if steps is None else dataclasses.replace(self.optim, steps=steps)
        base = {f.name: getattr(self, f.name) for f in dataclasses.fields(FMRun)}
        return FMRun(**base | {"model": dataclasses.replace(self.model, n_scalars=1),
                               "optim": optim})


def same_time_partner(run: FMRun) -> FMRun:
    """The run a page trains for the same time beside ``run``, with the same data, network
    and optimiser: plain FM beside a Shortcut model (§5), a Shortcut model (FAST_SHORTCUT's
    objective) beside a MeanFlow model (§6.3)."""
    if isinstance(run, ShortcutRun):
        return run.fm_baseline()
    if isinstance(run, MeanFlowRun):
        return ShortcutRun(**{f.name: getattr(run, f.name) for f in dataclasses.fields(FMRun)},
                           shortcut=FAST_SHORTCUT.shortcut)
    raise ValueError(f"no same-time partner for a {type(run).__name__}")


def same_time(run: FMRun, n: int = 30, reps: int = 3, device="cpu",
              uploaded: torch.Tensor | None = None) -> tuple[FMRun, tuple[float, float]]:
    """``same_time_partner(run)`` with as many optimizer steps as take the time of ``run``'s
    steps: run's steps x (run's ms / partner's ms), both timed here in interleaved chunks
    (median of ``reps``, so load changes hit both alike). Returns (partner, (run ms,
    partner ms))."""
    from .train import step_ms

    other = same_time_partner(run)
    build = {FMRun: build_fm, ShortcutRun: build_shortcut, MeanFlowRun: build_meanflow}

    def fresh(r):  # a long run: the cosine schedule does not end while it is timed
        r = dataclasses.replace(r, optim=dataclasses.replace(r.optim, steps=10**9))
        return build[type(r)](r, device, uploaded)

    ms = step_ms({"run": fresh(run), "other": fresh(other)}, n, reps)
    steps = max(1, round(run.optim.steps * ms["run"] / ms["other"]))
    return (dataclasses.replace(other, optim=dataclasses.replace(other.optim, steps=steps)),
            (ms["run"], ms["other"]))


# The shortcut preset for 2-D toys (issue 5), chosen by benchmarks/tune_shortcut.py: in a
# steps-to-quality sweep (moons, 2 seeds, widths 128/256, lr 3e-3/5e-3, 2000-6000 steps, share
# 0.1/0.25, EMA/stop-gradient) every setting reached a one-step energy distance <= 0.0075; width
# 128, lr 5e-3, stop-gradient gave 0.003 at one step and 0.0009 at 128 (plain FM at 9000 steps:
# 0.0007) at half the per-step cost of width 256. 3000 steps keep training under 60 s on a busy
# 2-core machine. benchmarks/bench_shortcut.py measures it; benchmarks/RESULTS.md has the figures.
FAST_SHORTCUT = ShortcutRun(batch=512, model=MLPConfig(hidden=128, n_scalars=2),
                            optim=OptimConfig(steps=3000, lr=5e-3),
                            shortcut=ShortcutConfig(sc_frac=0.25, target="stopgrad"))


def build_shortcut(cfg: ShortcutRun, device="cpu",
                   uploaded: torch.Tensor | None = None) -> TrainState:
    """A fresh shortcut training state; the objective's EMA target is the state's EMA copy."""
    return seeded_state(cfg, TimeMLP, ShortcutObjective(
        *data_samplers(cfg, uploaded), cfg.batch, cfg.shortcut, cfg.coupling), device)


@dataclass(frozen=True)
class MeanFlowRun(FMRun):
    """A MeanFlow run (article §6): the data and optimiser of an FMRun, the network u(x, t, r)
    (two scalar inputs, t and r - t, with a low-frequency time embedding: the JVP differentiates
    it in t), plus the MeanFlow settings."""

    model: MLPConfig = field(default_factory=lambda: MLPConfig(n_scalars=2, emb_scale=20.0))
    meanflow: MeanFlowConfig = field(default_factory=MeanFlowConfig)

    def __post_init__(self):
        if self.model.n_scalars != 2:
            raise ValueError("a MeanFlow model u(x, t, r) has two scalar inputs: n_scalars=2")


# The MeanFlow preset for 2-D toys (issue 6), from 3000-step moons sweeps: half the rows with
# r != t (better one-step quality than the paper's 25 % at about the same cost: the JVP's
# overhead is mostly fixed); uniform (t, r) rather than the paper's logit-normal, which almost
# never draws t near 0, so u(x, 0, r) is extrapolated (1 jump: ED 0.032 vs 0.005 with p = 0);
# plain squared error (p = 0) rather than the paper's p = 1, whose mode-seeking weight biases
# v = u(x, t, t) on these multimodal targets (Euler@128 ED 0.02-0.025 vs 0.001) so that 2-8
# jumps get worse than one. benchmarks/bench_meanflow.py measures it; benchmarks/RESULTS.md
# records the figures.
FAST_MEANFLOW = MeanFlowRun(meanflow=MeanFlowConfig(frac_neq=0.5, time_sampler="uniform", p=0.0))


def build_meanflow(cfg: MeanFlowRun, device="cpu",
                   uploaded: torch.Tensor | None = None) -> TrainState:
    """A fresh MeanFlow training state; its model is a MeanVelocity u(x, t, r)."""
    return seeded_state(cfg, MeanVelocity, MeanFlowObjective(
        *data_samplers(cfg, uploaded), cfg.batch, cfg.meanflow, cfg.coupling), device)


@dataclass(frozen=True)
class ReflowRun(JSONConfig):
    """k-rectified flow (article §3): the 1-RF ``base``, then rounds 2..``rounds``, each trained
    on pairs solved from the previous round's ODE with ``reflow``'s settings. Round k + 1's noise
    is drawn with seed base.data_seed + 100 + k, and its real points (inverted for the p_real
    mixing) are the base's fixed data set, as on the ReFlow page."""

    base: FMRun = field(default_factory=lambda: dataclasses.replace(FAST_1RF, n_data=1000))
    reflow: ReflowConfig = field(default_factory=ReflowConfig)
    rounds: int = 2
    BOUNDS: ClassVar[dict] = {"rounds": (2, 3)}

    def check(self) -> None:
        self.base.check()
        _within("reflow.n_pairs", self.reflow.n_pairs, 1, 100_000)
        _within("reflow.optim.steps", self.reflow.optim.steps, 1, 100_000)
        r = self.reflow
        for name, v, ok in (("solver", r.solver, METHODS), ("t_dist", r.t_dist, T_DISTS),
                            ("loss", r.loss, LOSSES), ("init", r.init, ("previous", "scratch"))):
            if v not in ok:
                raise ValueError(f"reflow.{name} must be one of {', '.join(ok)}")
        if self.base.n_data == 0 and self.base.target != UPLOAD:
            raise ValueError("base.n_data must be > 0: the real points are the fixed data set")

    def pair_noise(self, k: int, uploaded: torch.Tensor | None = None) -> torch.Tensor:
        """x0 of the pairs that the k-RF makes for round k + 1."""
        n, seed = self.reflow.n_pairs, self.base.data_seed + 100 + k
        if self.base.source == UPLOAD:
            pts = _need(uploaded)
            return pts[torch.randint(0, len(pts), (n,), generator=torch.Generator()
                                     .manual_seed(seed))]
        return sample(self.base.source, n, seed)[0]


def pair_settings(cfg: ReflowConfig) -> ReflowConfig:
    """The fields of a reflow config that the pair phase uses (the others at their defaults):
    two rounds that differ only in training share their pairs."""
    keep = ("n_pairs", "solver", "steps", "tol", "chunk", "n_real")
    return ReflowConfig(**{k: getattr(cfg, k) for k in keep})


def phases(run, device="cpu", uploaded: torch.Tensor | None = None) -> dict:
    """A run as ordered phases ``name -> build(done)``, ``done`` holding the finished earlier
    phases: "run" for FM, Shortcut and MeanFlow; "rf1", "pairs2", "rf2", ... for ReFlow. The
    CLI trains them in order, flowviz.checkpoint saves and restores them."""
    if isinstance(run, InstaFlowRun):  # teacher, triples, 2-RF, endpoints, two students
        return InstaFlowPipeline(run, torch.device(device)).builds
    if not isinstance(run, ReflowRun):
        build = {FMRun: build_fm, ShortcutRun: build_shortcut, MeanFlowRun: build_meanflow}
        return {"run": lambda done: build[type(run)](run, device, uploaded)}
    out = {"rf1": lambda done: build_fm(run.base, device, uploaded)}
    for k in range(1, run.rounds):
        def pairs(done, k=k):
            x1 = run.base.target_points(uploaded)
            return pair_phase(done[f"rf{k}"].sampler_model, run.pair_noise(k, uploaded)
                              .to(device), run.reflow, x1.to(device))

        def train(done, k=k):
            pairs, real = done[f"pairs{k + 1}"].result()
            return reflow_state(done[f"rf{k}"].sampler_model, pairs, run.reflow, real, k + 1)
        out[f"pairs{k + 1}"], out[f"rf{k + 1}"] = pairs, train
    return out


def phase_ids(run) -> dict:
    """What a page knows when it reaches each phase (the key it looks a preset up by): the
    run, or for ReFlow the 1-RF's run, then (phase name, 1-RF run, pair or round settings);
    for InstaFlow (phase name, run)."""
    if isinstance(run, InstaFlowRun):
        return {p: (p, run) for p in InstaFlowPipeline(run, "cpu").builds}
    if not isinstance(run, ReflowRun):
        return {"run": run}
    ids = {"rf1": run.base}
    for k in range(2, run.rounds + 1):
        ids[f"pairs{k}"] = (f"pairs{k}", run.base, pair_settings(run.reflow))
        ids[f"rf{k}"] = (f"rf{k}", run.base, run.reflow)
    return ids
