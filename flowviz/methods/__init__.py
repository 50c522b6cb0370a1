"""Training objectives, one file per method (article sections in each docstring)."""

from .fm import fm_loss, uniform_t
from .shortcut import ShortcutConfig, ShortcutObjective, Template, shortcut_loss

__all__ = ["ShortcutConfig", "ShortcutObjective", "Template", "fm_loss", "shortcut_loss",
           "uniform_t"]
