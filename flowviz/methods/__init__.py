"""Training objectives, one file per method (article sections in each docstring)."""

from .fm import fm_loss, uniform_t

__all__ = ["fm_loss", "uniform_t"]
