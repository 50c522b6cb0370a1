"""Networks: the time-conditioned MLP for 2-D points and latents."""

from .mlp import MLPConfig, TimeMLP, sinusoidal

__all__ = ["MLPConfig", "TimeMLP", "sinusoidal"]
