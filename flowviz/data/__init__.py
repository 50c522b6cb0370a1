"""Data: 2-D toy samplers, user point sets and couplings."""

import torch

from .coupling import COUPLINGS, couple, independent, minibatch_ot
from .points import MAX_POINTS, PointsError, load_points, points_sampler, validate_points
from .toy import EIGHT_GAUSSIAN_NAMES, LABELS, SAMPLERS, Sampler, mixture_means


def sample(name: str, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points (and labels) of the named toy dataset, reproducibly from ``seed``."""
    if name not in SAMPLERS:
        raise KeyError(f"unknown dataset {name!r}; choose from {sorted(SAMPLERS)}")
    return SAMPLERS[name](n, torch.Generator().manual_seed(seed))


__all__ = [
    "COUPLINGS", "EIGHT_GAUSSIAN_NAMES", "LABELS", "MAX_POINTS", "SAMPLERS", "PointsError",
    "Sampler", "couple", "independent", "load_points", "minibatch_ot", "mixture_means",
    "points_sampler", "sample", "validate_points",
]
