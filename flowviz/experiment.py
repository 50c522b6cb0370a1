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


def _need(points):
    if points is None:
        raise ValueError("this config uses uploaded points: pass them as `uploaded`")
    return points


def sampler_for(name: str, uploaded: torch.Tensor | None = None):
    """The (n, g) -> (x, labels) sampler of a dataset name, or of the uploaded points."""
    return points_sampler(_need(uploaded)) if name == UPLOAD else SAMPLERS[name]


def build_fm(cfg: FMRun, device="cpu", uploaded: torch.Tensor | None = None) -> TrainState:
    """A fresh training state for ``cfg``; ``uploaded`` serves a side named "upload"."""
    pts = cfg.target_points(uploaded)
    x1 = points_sampler(pts, cfg.h) if pts is not None else sampler_for(cfg.target)
    model = TimeMLP(cfg.model).to(device)
    objective = fm_objective(sampler_for(cfg.source, uploaded), x1, cfg.batch, cfg.coupling)
    return init_state(model, objective, cfg.optim)
