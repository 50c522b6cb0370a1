"""Interpolants x_t = a_t x0 + b_t x1 (noise x0 at t=0, data x1 at t=1) and their velocities.

Article §1.2: FM supervises v_t = a'_t x0 + b'_t x1. The linear path is rectified flow (§2);
the variance-preserving path is the diffusion forward process written in the same time
convention, so its marginal velocity *is* the diffusion PF-ODE drift (§1.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def _bcast(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Broadcast a (B,) or scalar time against x of shape (B, *dims)."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    return t.reshape(-1, *([1] * (x.dim() - 1))) if t.dim() else t


@dataclass(frozen=True)
class LinearPath:
    """Rectified flow: a_t = 1 - t, b_t = t, target velocity x1 - x0 (article §2)."""

    name: str = "linear"
    t_max: float = 1.0  # integrate samplers up to here

    def coeffs(self, t: torch.Tensor):
        """(a_t, b_t, a'_t, b'_t)."""
        return 1 - t, t, -torch.ones_like(t), torch.ones_like(t)

    def interpolate(self, x0, x1, t):
        t = _bcast(t, x0)
        return (1 - t) * x0 + t * x1

    def velocity(self, x0, x1, t=None):
        return x1 - x0


@dataclass(frozen=True)
class VPPath:
    """Variance-preserving diffusion (Song et al. 2021, linear beta schedule) in flow time.

    Diffusion time s = 1 - t; alpha_bar(s) = exp(-(beta_min s + (beta_max - beta_min) s^2 / 2)),
    b_t = sqrt(alpha_bar), a_t = sqrt(1 - alpha_bar). At t = 0 the data weight is
    exp(-5.03) ~ 0.0066, i.e. practically pure noise. The PF-ODE is singular at t = 1 (a_t -> 0,
    a'_t -> inf), so samplers stop at t_max = 1 - 1e-3, the usual epsilon of Song et al.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    name: str = "vp"
    t_max: float = 1 - 1e-3

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        """beta(s) at diffusion time s = 1 - t."""
        return self.beta_min + (self.beta_max - self.beta_min) * (1 - t)

    def coeffs(self, t: torch.Tensor):
        s = 1 - t
        log_ab = -(self.beta_min * s + 0.5 * (self.beta_max - self.beta_min) * s**2)
        ab = log_ab.exp()
        b = ab.sqrt()
        a = (-torch.expm1(log_ab)).clamp_min(1e-12).sqrt()
        # d(log alpha_bar)/dt = beta(s) since ds/dt = -1
        dlog = self.beta(t)
        db = 0.5 * dlog * b
        da = -0.5 * dlog * ab / a
        return a, b, da, db

    def interpolate(self, x0, x1, t):
        a, b, _, _ = self.coeffs(_bcast(t, x0))
        return a * x0 + b * x1

    def velocity(self, x0, x1, t):
        _, _, da, db = self.coeffs(_bcast(t, x0))
        return da * x0 + db * x1


PATHS = {"linear": LinearPath(), "vp": VPPath()}

__all__ = ["PATHS", "LinearPath", "VPPath"]
