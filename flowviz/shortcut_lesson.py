"""What the Shortcut page measures (article §5–5.2): the family of M-step samplers of one model
from the same noise, the field at several step sizes, the self-consistency identity at a point,
and how many plain flow-matching Euler steps one shortcut jump is worth. Plain torch."""

from __future__ import annotations

import time

import torch

from . import metrics
from .analysis import NFES, field_on
from .methods.shortcut import at_d, consistency_picture, sample
from .solvers import solve


@torch.no_grad()
def family(model, x0: torch.Tensor, ref: torch.Tensor, ms=NFES, n_paths: int = 30) -> dict:
    """M-step samples (d = 1/M, M network calls) of one shortcut model from the same noise x0:
    per M the first ``n_paths`` paths (M + 1, n_paths, 2), the samples and their energy
    distance to the data samples ``ref``."""
    out = {"paths": {}, "samples": {}, "ed": {}}
    for m in ms:
        s = sample(model, x0, m, return_traj=True)
        out["paths"][m] = s.traj[:, :n_paths].cpu()
        out["samples"][m] = s.x.cpu()
        out["ed"][m] = metrics.energy_distance(s.x, ref)
    return out


def calls_to_match(nfes, eds, target: float) -> int | None:
    """The fewest network calls at which a quality curve (nfes, eds) reaches ``target`` (e.g. a
    shortcut model's one-step distance, or the noise floor if that is lower); None: never."""
    return next((n for n, e in zip(nfes, eds, strict=True) if e <= target), None)


@torch.no_grad()
def fields_at_d(model, points: torch.Tensor, plane: torch.Tensor, t: float, ds) -> dict:
    """d -> (s(points, t, d), ‖s(plane, t, d) − s(plane, t, 0)‖): the arrows, and how far the
    jump direction has turned from the instantaneous velocity over a denser ``plane``."""
    base = field_on(at_d(model, 0.0), plane, t)
    return {d: (field_on(at_d(model, d), points, t).cpu(),
                (field_on(at_d(model, d), plane, t) - base).norm(dim=1).cpu()) for d in ds}


@torch.no_grad()
def consistency_at(model, point: torch.Tensor, t: float, d: float, fine_steps: int = 64) -> dict:
    """One step of 2d against two steps of d from ``point`` (1, 2) at time t (§5.1), and both
    ends against the model's own d = 0 field integrated finely (RK4) over [t, t + 2d]."""
    pic = consistency_picture(model, point, t, d)
    fine = solve(at_d(model, 0.0), point, "rk4", fine_steps, t0=t, t1=t + 2 * d,
                 return_traj=True)
    one, two, end = pic["one"][0], pic["two"][0], fine.x[0]
    return {"picture": {k: v.cpu() for k, v in pic.items()}, "fine": fine.traj.cpu(),
            "gap": float((one - two).norm()), "error_one_step": float((one - end).norm()),
            "error_two_steps": float((two - end).norm())}


@torch.no_grad()
def sampling_ms(model, x0: torch.Tensor, ms=NFES, reps: int = 3) -> dict[int, float]:
    """Wall-clock milliseconds of an M-step shortcut sample of x0 (median of ``reps``): the
    cost grows with the M network calls, the quality does not have to."""
    out = {}
    for m in ms:
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            sample(model, x0, m)
            if x0.is_cuda:
                torch.cuda.synchronize()
            times.append(1e3 * (time.perf_counter() - t0))
        out[m] = sorted(times)[len(times) // 2]
    return out
