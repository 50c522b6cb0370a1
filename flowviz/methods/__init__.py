"""Training objectives, one file per method (article sections in each docstring)."""

from .fm import drop_labels, fm_loss, guided, squared_error, uniform_t
from .meanflow import MeanFlowConfig, MeanFlowObjective, MeanVelocity, meanflow_loss
from .reflow import ReflowConfig, generate_pairs, invert, next_round
from .shortcut import ShortcutConfig, ShortcutObjective, Template, shortcut_loss

__all__ = ["MeanFlowConfig", "MeanFlowObjective", "MeanVelocity", "ReflowConfig",
           "ShortcutConfig", "ShortcutObjective", "Template", "drop_labels", "fm_loss",
           "generate_pairs", "guided", "invert", "meanflow_loss", "next_round", "shortcut_loss",
           "squared_error", "uniform_t"]
