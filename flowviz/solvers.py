"""ODE solvers for dx/dt = v(x, t) from t0 to t1, counting network evaluations (NFE).

Fixed-step: Euler (order 1), midpoint and Heun (order 2), RK4 (order 4). Adaptive: torchdiffeq's
dopri5 / bosh3 / adaptive_heun with rtol/atol. Every solver can return the whole trajectory
(T, N, *dims) together with its times, so pages draw the same paths the metrics measure.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

FIXED = ("euler", "midpoint", "heun", "rk4")
ADAPTIVE = ("dopri5", "bosh3", "adaptive_heun")
METHODS = FIXED + ADAPTIVE
EVALS_PER_STEP = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}
# One step of each fixed-step method as `_step` computes it, for display (LaTeX).
LATEX = {
    "euler": r"x_{k+1}=x_k+h\,v(x_k,t_k)",
    "midpoint": r"x_{k+1}=x_k+h\,v\big(x_k+\tfrac h2 v(x_k,t_k),\,t_k+\tfrac h2\big)",
    "heun": r"x_{k+1}=x_k+\tfrac h2\big(k_1+v(x_k+h k_1,\,t_k+h)\big),\ k_1=v(x_k,t_k)",
    "rk4": r"x_{k+1}=x_k+\tfrac h6\,(k_1+2k_2+2k_3+k_4)",
}


@dataclass
class Solution:
    x: torch.Tensor  # (N, *dims) state at t1
    nfe: int  # number of field evaluations (each on the whole batch)
    traj: torch.Tensor | None = None  # (T, N, *dims) when requested
    ts: torch.Tensor | None = None  # (T,)


class _Counted:
    def __init__(self, field):
        self.field, self.nfe = field, 0

    def __call__(self, x, t):
        self.nfe += 1
        return self.field(x, t.expand(x.shape[0]) if t.dim() == 0 else t)


def _step(f, method: str, x, t, h):
    if method == "euler":
        return x + h * f(x, t)
    if method == "midpoint":
        return x + h * f(x + 0.5 * h * f(x, t), t + 0.5 * h)
    if method == "heun":
        k1 = f(x, t)
        k2 = f(x + h * k1, t + h)
        return x + 0.5 * h * (k1 + k2)
    if method == "rk4":
        k1 = f(x, t)
        k2 = f(x + 0.5 * h * k1, t + 0.5 * h)
        k3 = f(x + 0.5 * h * k2, t + 0.5 * h)
        k4 = f(x + h * k3, t + h)
        return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    raise ValueError(f"unknown fixed-step method {method!r}")


@torch.no_grad()
def solve(field, x0: torch.Tensor, method: str = "euler", steps: int = 100, t0: float = 0.0,
          t1: float = 1.0, return_traj: bool = False, rtol: float = 1e-5, atol: float = 1e-5,
          n_save: int = 101) -> Solution:
    """Integrate ``field(x, t)`` (t of shape (N,)) from x0 at t0 to t1.

    Fixed-step methods take ``steps`` equal steps (traj has steps + 1 points); adaptive ones
    choose their own steps and the trajectory is reported at ``n_save`` equally spaced times.
    t1 < t0 integrates backwards (e.g. data -> noise inversion).
    """
    f = _Counted(field)
    kw = dict(device=x0.device, dtype=x0.dtype)
    if method in FIXED:
        ts = torch.linspace(t0, t1, steps + 1, **kw)
        x, xs = x0, [x0]
        for i in range(steps):
            x = _step(f, method, x, ts[i], ts[i + 1] - ts[i])
            if return_traj:
                xs.append(x)
        traj = torch.stack(xs) if return_traj else None
        return Solution(x, f.nfe, traj, ts if return_traj else None)
    if method in ADAPTIVE:
        from torchdiffeq import odeint

        ts = torch.linspace(t0, t1, n_save if return_traj else 2, **kw)
        traj = odeint(lambda t, x: f(x, t), x0, ts, method=method, rtol=rtol, atol=atol)
        return Solution(traj[-1], f.nfe, traj if return_traj else None,
                        ts if return_traj else None)
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def steps_for_nfe(method: str, nfe: int) -> int:
    """Number of fixed steps that spends (at most) ``nfe`` evaluations; at least one step."""
    return max(1, nfe // EVALS_PER_STEP[method])
