"""Couplings pi(x0, x1): which source point is paired with which data point (article §3.1)."""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment

COUPLINGS = ("independent", "ot")


def independent(x0: torch.Tensor, x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """pi_0 = p_init x p_data: pairs as drawn."""
    return x0, x1


def minibatch_ot(x0: torch.Tensor, x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact squared-Euclidean optimal assignment within the minibatch (Hungarian algorithm).

    Pooladian et al. 2023 / Tong et al. 2023: re-pairing each batch by OT makes pair lines cross
    far less, so the marginal field is straighter. Works for any (B, *dims).
    """
    a, b = x0.flatten(1), x1.flatten(1)
    cost = torch.cdist(a.double(), b.double()).pow(2).cpu().numpy()
    _, col = linear_sum_assignment(cost)
    return x0, x1[torch.as_tensor(col, device=x1.device)]


def couple(kind: str, x0: torch.Tensor, x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if kind == "independent":
        return independent(x0, x1)
    if kind == "ot":
        return minibatch_ot(x0, x1)
    raise ValueError(f"unknown coupling {kind!r}; choose from {COUPLINGS}")
