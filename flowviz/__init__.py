"""flowviz: see why flow matching is not automatically fast, and how fast generators fix it.

A pure PyTorch library (no Streamlit here): toy data and couplings, interpolation paths, the
exact marginal field, models, training objectives, solvers, metrics and plotly figures.
"""

from . import analysis, data, exact, methods, metrics, models, paths, solvers, viz
from .device import pick_device
from .exact import ExactField
from .experiment import FMRun, MeanFlowRun, ShortcutRun, build_fm, build_meanflow, build_shortcut
from .solvers import solve
from .train import OptimConfig, TrainState, init_state, train_steps

__all__ = ["ExactField", "FMRun", "MeanFlowRun", "OptimConfig", "ShortcutRun", "TrainState",
           "analysis", "build_fm", "build_meanflow", "build_shortcut", "data", "exact",
           "init_state", "methods", "metrics", "models", "paths", "pick_device", "solve",
           "solvers", "train_steps", "viz"]
