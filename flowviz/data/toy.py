"""2-D toy distributions (article §2: the pair-line and averaged-field figures).

Every sampler has the signature ``sampler(n, generator) -> (x, labels)`` with ``x`` of shape
(n, 2) float32 and ``labels`` of shape (n,) int64 (the mixture component / part a point came
from, or all zeros). Scales are chosen so every dataset has a spread of about 2-4 units, like a
standard normal source.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Sampler = Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]

EIGHT_GAUSSIAN_NAMES = ("E", "NE", "N", "NW", "W", "SW", "S", "SE")


def _randn(n: int, g: torch.Generator, d: int = 2) -> torch.Tensor:
    return torch.randn(n, d, generator=g)


def _rand(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g)


def gaussian(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard normal N(0, I): the usual source."""
    return _randn(n, g), torch.zeros(n, dtype=torch.long)


def mixture_means(name: str) -> torch.Tensor:
    """Component means of the mixture datasets (used by mode-coverage metrics)."""
    if name == "8gaussians":
        ang = torch.arange(8) * (2 * math.pi / 8)
        return 3.0 * torch.stack([ang.cos(), ang.sin()], 1)
    if name == "two_mode":
        return torch.tensor([[0.0, 2.5], [0.0, -2.5]])
    raise KeyError(name)


def eight_gaussians(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Eight Gaussians (std 0.25) on a circle of radius 3; labels follow EIGHT_GAUSSIAN_NAMES."""
    k = torch.randint(0, 8, (n,), generator=g)
    return mixture_means("8gaussians")[k] + 0.25 * _randn(n, g), k


def two_mode(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two tight modes at (0, +-2.5): with a Gaussian source the pair lines cross (article §2)."""
    k = torch.randint(0, 2, (n,), generator=g)
    return mixture_means("two_mode")[k] + 0.3 * _randn(n, g), k


def moons(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaving half circles (scikit-learn's shape), centred, scaled by 2, noise 0.05*2."""
    k = torch.randint(0, 2, (n,), generator=g)
    a = math.pi * _rand(n, g)
    upper = torch.stack([a.cos(), a.sin()], 1)
    lower = torch.stack([1 - a.cos(), 0.5 - a.sin()], 1)
    x = torch.where(k[:, None] == 0, upper, lower) - torch.tensor([0.5, 0.25])
    return 2.0 * x + 0.1 * _randn(n, g), k


def checkerboard(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform on the 8 black cells of a 4x4 board over [-4, 4]^2 (labels: cell index)."""
    cell = torch.randint(0, 8, (n,), generator=g)
    row = cell // 2
    col = 2 * (cell % 2) + (row % 2)
    u = torch.rand(n, 2, generator=g)
    x = torch.stack([col + u[:, 0], row + u[:, 1]], 1) * 2.0 - 4.0
    return x, cell


def two_spirals(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved Archimedean spirals."""
    k = torch.randint(0, 2, (n,), generator=g)
    r = _rand(n, g).sqrt() * 3 * math.pi
    sign = 1 - 2 * k.float()
    x = sign[:, None] * torch.stack([-r * r.cos(), r * r.sin()], 1)
    return x / 2.5 + 0.1 * _randn(n, g), k


def rings(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Three concentric rings of radii 1, 2, 3 (mass proportional to circumference)."""
    k = torch.multinomial(torch.tensor([1.0, 2.0, 3.0]), n, replacement=True, generator=g)
    a = 2 * math.pi * _rand(n, g)
    r = (k + 1).float()
    return r[:, None] * torch.stack([a.cos(), a.sin()], 1) + 0.08 * _randn(n, g), k


def swiss_roll(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """2-D swiss roll (scikit-learn's parametrisation, x-z plane), scaled to about [-3, 3]."""
    s = 1.5 * math.pi * (1 + 2 * _rand(n, g))
    x = torch.stack([s * s.cos(), s * s.sin()], 1) / 4.5 + 0.1 * _randn(n, g)
    return x, torch.zeros(n, dtype=torch.long)


SAMPLERS: dict[str, Sampler] = {
    "gaussian": gaussian,
    "8gaussians": eight_gaussians,
    "two_mode": two_mode,
    "moons": moons,
    "checkerboard": checkerboard,
    "two_spirals": two_spirals,
    "rings": rings,
    "swiss_roll": swiss_roll,
}

LABELS = {
    "gaussian": "Gaussian N(0, I)",
    "8gaussians": "8 Gaussians",
    "two_mode": "Two modes",
    "moons": "Moons",
    "checkerboard": "Checkerboard",
    "two_spirals": "Two spirals",
    "rings": "Concentric rings",
    "swiss_roll": "Swiss roll",
}
