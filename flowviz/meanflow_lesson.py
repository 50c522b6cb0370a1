"""What the MeanFlow page measures (article §6–6.3): the tangent v against the chord u at a point
of the exact flow, a trained u_θ along the same path, its one-jump and k-jump quality, and
a Shortcut model read as a mean velocity beside it. Plain torch."""

from __future__ import annotations

import math
from functools import partial

import torch

from .analysis import quality_vs_nfe
from .methods import meanflow as mf
from .methods import shortcut as sc


def tangent_and_chord(v_t: torch.Tensor, u_tr: torch.Tensor, t: float, r: float) -> dict:
    """At x_t: the lengths of the tangent v(x_t, t) and the chord u(x_t, t, r), the angle
    between them (degrees) and how far one step of v misses x_r, (r − t)·‖v − u‖."""
    cos = float(v_t @ u_tr / (v_t.norm() * u_tr.norm()).clamp_min(1e-12))
    return {"tangent": float(v_t.norm()), "chord": float(u_tr.norm()),
            "angle": math.degrees(math.acos(max(-1.0, min(1.0, cos)))),
            "miss": float(((r - t) * (v_t - u_tr)).norm())}


@torch.no_grad()
def along_path(u, traj: torch.Tensor, ts: torch.Tensor, i: int, device="cpu") -> tuple:
    """A mean-velocity model u(x, t, r) (on ``device``) at x_t = traj[i] for every r′ = ts[k],
    k >= i (NaN before): (rows (T, 2), its jumps x_t + (r′ − t)·u (T, 2))."""
    rr = ts[i:].to(device)
    xt = traj[i].to(device).expand(len(rr), 2)
    row = torch.full_like(traj, float("nan"))
    row[i:] = u(xt, torch.full_like(rr, ts[i].item()), rr).cpu()
    return row, traj[i] + (ts - ts[i])[:, None] * row


def jump_or_step(ed_step: float, ed_jump: float, noise: float) -> str:
    """Which single call lands closer to the data: 'jump', 'step', or 'same' when the two
    distances differ by less than twice the estimate's noise."""
    if abs(ed_step - ed_jump) < 2 * abs(noise) + 1e-3:
        return "same"
    return "jump" if ed_jump < ed_step else "step"


@torch.no_grad()
def evaluate(model, x0: torch.Tensor, ref: torch.Tensor) -> dict:
    """A trained MeanFlow model from the noise x0 against the data samples ``ref``: its one-jump
    samples; energy distance vs NFE of k jumps of u_θ and of the same net used as an ODE field
    v_θ(x, t) = u_θ(x, t, t) with Euler; the identity checked on its own flow (256 points) and
    each point's one jump against the end of its own flow (500 points)."""
    return {"one_jump": mf.sample(model, x0).x.cpu(),
            "jumps": quality_vs_nfe(None, x0, ref, sample=mf.sampler(model)),
            "as_velocity": quality_vs_nfe(model.velocity, x0, ref),
            "identity": mf.identity_check(model, x0[:256]),
            "own_flow": mf.one_step_error(model, x0[:500])}


def shortcut_as_mean(s_model):
    """Shortcut's s(x, t, d) read as a mean velocity (§6.3): u(x, t, r) = s(x, t, r − t)."""
    return lambda x, t, r: s_model(x, t, r - t)


@torch.no_grad()
def against_shortcut(model, s_model, x0: torch.Tensor, ref: torch.Tensor, field=None,
                     x0_exact: torch.Tensor | None = None, substeps: int = 1) -> dict:
    """The Shortcut model's quality vs NFE from the same noise, and, given the exact ``field``,
    both models' error of the interval average against the exact u* over interval lengths."""
    out = {"shortcut": quality_vs_nfe(None, x0, ref, sample=partial(sc.sample, s_model))}
    if field is not None:
        out["by_interval"] = mf.error_vs_interval(
            {"MeanFlow u_θ(x, t, t + d)": model,
             "Shortcut s_θ(x, t, d)": shortcut_as_mean(s_model)},
            field, x0_exact, 20, substeps)
    return out
