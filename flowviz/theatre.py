"""Flow theatre: the same noise carried to the data by every method, state by state (§6.3.1).

For one batch of noise x0 and a sampler budget of k network calls, each method's *flight* is
the list of states its own sampler visits: k Euler steps for a flow (1-RF, minibatch OT, 2-RF),
k shortcut steps of size d = 1/k, one jump for the distilled student and for MeanFlow, and the
exact fields (v* of the linear path, the VP diffusion PF-ODE) solved finely with RK4 as the
reference. Between two visited states a point is drawn moving straight along the step: that is
exactly what an Euler or shortcut step of a shorter size would do from the same state, and for
a jump it is only a drawing (the sampler computes the two ends alone), which pages must say.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from . import presets, store
from .exact import ExactField, vp_pf_ode_drift
from .methods import meanflow, shortcut
from .methods.distill import one_step
from .paths import LinearPath, VPPath
from .solvers import solve
from .train import TrainState, train_steps

# key -> label; the labels name the method, so flowviz.viz.style colours them
METHODS = {"exact": "exact v*", "vp": "exact VP PF-ODE", "rf1": "1-RF", "ot": "minibatch OT",
           "rf2": "2-RF", "student": "2-RF + distill", "shortcut": "Shortcut",
           "meanflow": "MeanFlow"}
DEFAULT = ("exact", "rf1", "rf2", "student", "shortcut", "meanflow")
FLOWS = ("rf1", "ot", "rf2")  # Euler on a learned v(x, t)
EXACT = ("exact", "vp")
FINE = 60  # RK4 steps of the exact reference (a multiple of every frame grid used below)
# where each method's preset lives (the student is distilled from the 2-RF, see `student`)
PRESETS = {"rf1": ("reflow-moons", "rf1"), "rf2": ("reflow-moons", "rf2"),
           "student": ("reflow-moons", "rf2"), "ot": ("straight_pairs-moons-ot", "run"),
           "shortcut": ("shortcut-moons", "run"), "meanflow": ("meanflow-moons", "run")}


@dataclass
class Flight:
    """The states one method's sampler visits from the noise: xs[j] at time ts[j]."""

    key: str
    ts: torch.Tensor  # (S + 1,)
    xs: torch.Tensor  # (S + 1, N, 2)
    nfe: int  # network (or exact field) evaluations spent
    how: str  # e.g. "4 Euler steps", "1 jump"

    @property
    def label(self) -> str:
        return METHODS[self.key]


def noise(n: int = 400, seed: int = 0) -> torch.Tensor:
    """The theatre's noise: n standard normal points, the same for every method."""
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


def fields(data: torch.Tensor, h: float) -> dict:
    """The exact fields of a data set: v* of the linear path and of the VP path (diffusion)."""
    return {"exact": ExactField(data, LinearPath(), h=h), "vp": ExactField(data, VPPath(), h=h)}


@torch.no_grad()
def fly(key: str, model, x0: torch.Tensor, k: int, fine: int = FINE) -> Flight:
    """``key``'s flight from x0 with its own sampler at budget k (``model``: its network, or
    its ExactField for the exact keys)."""
    if key == "exact":
        s = solve(model, x0, "rk4", fine, return_traj=True)
        return Flight(key, s.ts, s.traj, s.nfe, f"RK4, {fine} steps (reference)")
    if key == "vp":
        s = solve(lambda x, t: vp_pf_ode_drift(model, x, t), x0, "rk4", fine,
                  t1=model.path.t_max, return_traj=True)
        return Flight(key, s.ts, s.traj, s.nfe, f"RK4, {fine} steps (reference)")
    if key in FLOWS:
        s = solve(model, x0, "euler", k, return_traj=True)
        return Flight(key, s.ts, s.traj, k, f"{k} Euler step{'s' * (k > 1)}")
    if key == "shortcut":
        s = shortcut.sample(model, x0, k, return_traj=True)
        d = "1" if k == 1 else f"1/{k}"
        return Flight(key, s.ts, s.traj, k, f"{k} shortcut step{'s' * (k > 1)}, d = {d}")
    if key == "meanflow":  # its selling point: one jump, whatever the budget
        s = meanflow.sample(model, x0, 1, return_traj=True)
        return Flight(key, s.ts, s.traj, 1, "1 jump (drawn straight)")
    if key == "student":
        ts = torch.tensor([0.0, 1.0], dtype=x0.dtype)
        return Flight(key, ts, torch.stack([x0, one_step(model, x0)]), 1,
                      "1 jump (drawn straight)")
    raise ValueError(f"unknown method {key!r}; choose from {', '.join(METHODS)}")


def theatre(cast: dict, x0: torch.Tensor, k: int) -> dict[str, Flight]:
    """Every method of ``cast`` ({key: network or exact field}) flown from the same x0."""
    if k < 1:
        raise ValueError("the budget k must be at least one network call")
    return {key: fly(key, m, x0, k) for key, m in cast.items()}


# --- frames ------------------------------------------------------------------------------------
def frame_times(flights: dict, n: int = FINE + 1) -> np.ndarray:
    """n equally spaced times in [0, 1] plus every time a flight visits a state, so each
    visited state is a frame of its own."""
    ts = [np.linspace(0, 1, n)] + [f.ts.double().numpy() for f in flights.values()]
    return np.unique(np.round(np.concatenate(ts), 6))


def positions(flight: Flight, times: np.ndarray) -> np.ndarray:
    """(F, N, 2): the points at each time, moving straight between visited states (held at
    the last state after it, e.g. the VP flight that stops at t = 1 - 1e-3)."""
    ts, xs = flight.ts.double().numpy(), flight.xs.double().numpy()
    t = np.clip(times, ts[0], ts[-1])
    j = np.clip(np.searchsorted(ts, t, side="right") - 1, 0, len(ts) - 2)
    w = ((t - ts[j]) / (ts[j + 1] - ts[j]))[:, None, None]
    return (1 - w) * xs[j] + w * xs[j + 1]


def visited(flight: Flight, times: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """(F,) whether the sampler itself computed the state shown at each time."""
    ts = flight.ts.double().numpy()
    return np.abs(times[:, None] - ts[None, :]).min(1) <= tol


def frames_table(flights: dict, times: np.ndarray) -> dict[str, np.ndarray]:
    """Columns (method, t, point, x, y, visited) of every frame: the CSV export."""
    cols = {"method": [], "t": [], "point": [], "x": [], "y": [], "visited": []}
    for f in flights.values():
        p, v = positions(f, times), visited(f, times)
        F, N = p.shape[:2]
        cols["method"].append(np.full(F * N, f.label))
        cols["t"].append(np.repeat(times, N))
        cols["point"].append(np.tile(np.arange(N), F))
        cols["x"].append(p[..., 0].ravel())
        cols["y"].append(p[..., 1].ravel())
        cols["visited"].append(np.repeat(v, N))
    return {c: np.concatenate(v) for c, v in cols.items()}


def frames_csv(flights: dict, times: np.ndarray) -> str:
    """frames_table as CSV text (method, t, point, x, y, visited)."""
    c = frames_table(flights, times)
    rows = zip(c["method"], c["t"], c["point"], c["x"], c["y"], c["visited"], strict=True)
    return "method,t,point,x,y,visited\n" + "".join(
        f"{m},{t:.6f},{i},{x:.6f},{y:.6f},{int(v)}\n" for m, t, i, x, y, v in rows)


# --- one particle -------------------------------------------------------------------------------
@dataclass
class Particle:
    """One noise point under one method at time t."""

    path: np.ndarray  # (S + 1, 2) the states visited
    x: np.ndarray  # (2,) where it is drawn at t
    tangent: np.ndarray  # (2,) the method's velocity there (for a jump: the jump's direction)
    end: np.ndarray  # (2,) the endpoint
    jump: np.ndarray | None  # (2,) where its jump from x lands (Shortcut: size d, MeanFlow: r = 1)
    length: float  # path length through the visited states
    error: float  # |end - the exact field's endpoint from the same noise|


@torch.no_grad()
def follow(cast: dict, flights: dict, i: int, t: float, k: int,
           reference: Flight | None = None) -> dict[str, Particle]:
    """Noise point i under every flight at time t: its path, tangent, chord end and jump."""
    ref = reference if reference is not None else flights.get("exact")
    out = {}
    for key, f in flights.items():
        path = f.xs[:, i].double().numpy()
        x = positions(Flight(key, f.ts, f.xs[:, i:i + 1], f.nfe, f.how), np.array([t]))[0, 0]
        xt = torch.tensor(x, dtype=f.xs.dtype)[None]
        tt = torch.full((1,), float(min(t, f.ts[-1])), dtype=f.xs.dtype)
        m, jump = cast[key], None
        if key == "exact":
            v = m(xt, tt)
        elif key == "vp":
            v = vp_pf_ode_drift(m, xt, tt)
        elif key in FLOWS:
            v = m(xt, tt)
        elif key == "shortcut":
            d = min(1.0 / k, 1.0 - float(tt))
            v = m(xt, tt, torch.zeros_like(tt))  # d = 0: its instantaneous flow
            jump = (xt + d * m(xt, tt, torch.full_like(tt, d)))[0].numpy()
        elif key == "meanflow":
            v = m.velocity(xt, tt)
            jump = (xt + (1 - tt) * m(xt, tt, torch.ones_like(tt)))[0].numpy()
        else:  # the student only knows t = 0: its jump is a straight line
            v = (f.xs[-1, i] - f.xs[0, i])[None]
        end = path[-1]
        err = float(np.linalg.norm(end - ref.xs[-1, i].double().numpy())) if ref else float("nan")
        out[key] = Particle(path, x, v[0].double().numpy(), end, jump,
                            float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum()), err)
    return out


def density(field: ExactField, t: float, lim: float, n: int = 60) -> tuple:
    """(grid (n,), p (n, n)) of the exact marginal p_t on [-lim, lim]^2: the mixture
    sum_i N(b_t y_i, s_t^2 I) / N that the points should match at time t."""
    g = torch.linspace(-lim, lim, n, dtype=torch.float64)
    xy = torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)
    _, b, _, _, s2, _ = field.coeffs(t, xy)
    d2 = torch.cdist(xy, b[:1] * field.data).pow(2)
    p = torch.exp(-d2 / (2 * s2[:1])).mean(1) / (2 * torch.pi * s2[0])
    return g.numpy(), p.reshape(n, n).numpy()


# --- from the presets ---------------------------------------------------------------------------
def preset_data():
    """(data points, h) every method's preset was trained on (the moons presets)."""
    run = presets.specs()[PRESETS["shortcut"][0]].run
    return run.target_points(), run.h


def missing_presets() -> list[str]:
    """The presets the theatre needs that this server lacks (all of them when presets are
    turned off)."""
    names = sorted({name for name, _ in PRESETS.values()})
    if not presets.enabled():
        return names
    return [n for n in names if n not in presets.specs() or not presets.specs()[n].path.exists()]


def weights(keys) -> tuple:
    """Digests of the preset checkpoints behind ``keys``: they key the stored evaluations."""
    return tuple(sorted({presets.weights_digest(PRESETS[k][0]) for k in keys if k in PRESETS}))


def preset_cast(keys=DEFAULT, device="cpu") -> dict:
    """{key: network or exact field} for ``keys`` from the presets; the student is distilled
    from the 2-RF preset once and stored (``student``)."""
    specs, loaded, cast = presets.specs(), {}, {}
    for key in keys:
        if key in EXACT:
            cast[key] = fields(*preset_data())[key]
            continue
        name, phase = PRESETS[key]
        if name not in loaded:
            loaded[name] = presets.load(specs[name], device)
        model = loaded[name][phase].sampler_model.eval()
        if key == "student":
            model = copy.deepcopy(model)
            model.load_state_dict(student(presets.weights_digest(name)))
        cast[key] = model
    return cast


def student(rf2_weights: str, seed: int = 0) -> dict:
    """The weights of the 2-RF preset's one-step student (the scoreboard's recipe: its ODE
    endpoints, then distillation from its weights), computed once and stored under the 2-RF's
    weights and the recipe's code (not this file's: editing the theatre keeps the student)."""
    from . import scoreboard

    def distill():
        name, phase = PRESETS["rf2"]
        jobs = {"rf2": presets.load(presets.specs()[name])[phase]}
        for step, build in scoreboard.student_phases(scoreboard.DistillRun(), seed, "cpu").items():
            jobs[step] = s = build(jobs)
            while not s.done:
                train_steps(s, 200) if isinstance(s, TrainState) else s.advance(4)
        return {k: v.clone() for k, v in jobs["student"].sampler_model.state_dict().items()}

    key = store.digest("theatre.student", rf2_weights, seed,
                       store.source_digest(scoreboard.__file__))
    return store.fetch(key, distill)


def from_presets(keys=DEFAULT, k: int = 1, n: int = 400, seed: int = 0) -> dict[str, Flight]:
    """The theatre of the presets (the moons data) for noise(n, seed) at budget k, stored."""
    keys = tuple(key for key in METHODS if key in keys)  # one order everywhere
    return _stored_theatre(keys, int(k), int(n), int(seed), weights(keys))


@store.stored
def _stored_theatre(keys: tuple, k: int, n: int, seed: int, digests: tuple) -> dict:
    return theatre(preset_cast(keys), noise(n, seed), k)
