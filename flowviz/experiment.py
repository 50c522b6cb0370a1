"""A whole 1-rectified-flow experiment as one frozen, JSON-serialisable config.

The page's "Train live", the CLI and the benchmark all build their training state here, so the
same config gives the same run everywhere.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import torch

from .data import SAMPLERS, points_sampler, sample
from .methods.fm import fm_objective
from .methods.meanflow import MeanFlowConfig, MeanFlowObjective, MeanVelocity
from .methods.shortcut import ShortcutConfig, ShortcutObjective, Template
from .models import MLPConfig, TimeMLP
from .train import OptimConfig, TrainState, init_state


@dataclass(frozen=True)
class FMRun:
    source: str = "gaussian"  # a flowviz.data.SAMPLERS name, or "upload"
    target: str = "moons"
    coupling: str = "independent"  # or "ot" (minibatch optimal transport)
    n_data: int = 0  # 0: fresh target samples every batch; N: a fixed set of N points
    data_seed: int = 0
    h: float = 0.0  # fixed sets are widened into N(y_i, h^2 I), as in flowviz.exact
    batch: int = 512
    model: MLPConfig = field(default_factory=MLPConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> FMRun:
        d = dict(d)
        d["model"] = MLPConfig(**d.get("model", {}))
        d["optim"] = OptimConfig(**d.get("optim", {}))
        return cls(**d)

    def target_points(self, uploaded: torch.Tensor | None = None) -> torch.Tensor | None:
        """The fixed training set (the empirical p_data of flowviz.exact): the uploaded points
        when target == "upload", else n_data samples of the target (None when n_data == 0)."""
        if self.target == UPLOAD:
            return _need(uploaded)
        return sample(self.target, self.n_data, self.data_seed)[0] if self.n_data else None


UPLOAD = "upload"

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


def build_fm(cfg: FMRun, device="cpu", uploaded: torch.Tensor | None = None) -> TrainState:
    """A fresh training state for ``cfg``; ``uploaded`` serves a side named "upload"."""
    with torch.random.fork_rng(devices=[]):  # initial weights depend on the seed alone
        torch.manual_seed(cfg.optim.seed)
        model = TimeMLP(cfg.model).to(device)
    objective = fm_objective(*data_samplers(cfg, uploaded), cfg.batch, cfg.coupling)
    return init_state(model, objective, cfg.optim)


@dataclass(frozen=True)
class ShortcutRun(FMRun):
    """A shortcut-model run (article §5): the data, network (two scalar inputs t, d) and optimiser
    of an FMRun, plus the shortcut settings."""

    model: MLPConfig = field(default_factory=lambda: MLPConfig(n_scalars=2))
    shortcut: ShortcutConfig = field(default_factory=ShortcutConfig)

    def __post_init__(self):
        if self.model.n_scalars != 2:
            raise ValueError("a shortcut model s(x, t, d) has two scalar inputs: n_scalars=2")

    @classmethod
    def from_dict(cls, d: dict) -> ShortcutRun:
        d = dict(d)
        sc = dict(d.pop("shortcut", {}))
        if "template" in sc:
            sc["template"] = Template(**sc["template"])
        return dataclasses.replace(super().from_dict(d), shortcut=ShortcutConfig(**sc))

    def fm_baseline(self, steps: int | None = None) -> FMRun:
        """The plain FM run on the same data with the same network (t input only); ``steps``
        changes its length (e.g. to match the shortcut run's training time)."""
        optim = self.optim if steps is None else dataclasses.replace(self.optim, steps=steps)
        base = {f.name: getattr(self, f.name) for f in dataclasses.fields(FMRun)}
        return FMRun(**base | {"model": dataclasses.replace(self.model, n_scalars=1),
                               "optim": optim})


def shortcut_step_cost(cfg: ShortcutRun, n: int = 30, reps: int = 3, device="cpu"):
    """Milliseconds per optimizer step of the shortcut run and of its FM baseline, timed here in
    interleaved chunks (median of ``reps``), so that the two can be given the same training
    time. Returns (shortcut ms, FM ms)."""
    import statistics
    import time

    from .train import train_steps

    long = dataclasses.replace(cfg.optim, steps=10**9)
    states = [build_shortcut(dataclasses.replace(cfg, optim=long), device),
              build_fm(dataclasses.replace(cfg.fm_baseline(), optim=long), device)]
    times = [[], []]
    for st in states:
        train_steps(st, 5)  # warm-up
    for _ in range(reps):
        for st, acc in zip(states, times, strict=True):
            t0 = time.perf_counter()
            train_steps(st, n)
            acc.append(1e3 * (time.perf_counter() - t0) / n)
    return statistics.median(times[0]), statistics.median(times[1])


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
    with torch.random.fork_rng(devices=[]):  # initial weights depend on the seed alone
        torch.manual_seed(cfg.optim.seed)
        model = TimeMLP(cfg.model).to(device)
    objective = ShortcutObjective(*data_samplers(cfg, uploaded), cfg.batch, cfg.shortcut,
                                  cfg.coupling)
    return init_state(model, objective, cfg.optim)


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

    @classmethod
    def from_dict(cls, d: dict) -> MeanFlowRun:
        d = dict(d)
        m = MeanFlowConfig(**d.pop("meanflow", {}))
        return dataclasses.replace(super().from_dict(d), meanflow=m)


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
    with torch.random.fork_rng(devices=[]):  # initial weights depend on the seed alone
        torch.manual_seed(cfg.optim.seed)
        model = MeanVelocity(cfg.model).to(device)
    objective = MeanFlowObjective(*data_samplers(cfg, uploaded), cfg.batch, cfg.meanflow,
                                  cfg.coupling)
    return init_state(model, objective, cfg.optim)
