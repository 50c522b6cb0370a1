"""A page's main figures without the app: the same functions draw them on the page and in
``python -m flowviz figure PAGE ...`` (PNG/SVG/CSV, NPZ and GIF of trajectories).

Each ``*_section`` function takes arrays (the page passes its cached data, the CLI samples the
same data with the same seeds) and returns named figures, the arrays behind them and metrics.
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from . import data, viz
from .analysis import coupling_metrics, field_on, grid, path_metrics
from .args import SEED, bounded, writable_dir
from .config import JSONConfig
from .exact import ExactField
from .methods.meanflow import trajectory
from .metrics import energy_distance
from .paths import PATHS
from .solvers import solve
from .viz.meanflow import jumps_fig

LIM = 4.5


@dataclass(frozen=True)
class FigureSpec(JSONConfig):
    """Everything a page's exact-field figures depend on (the sidebar and the page's slider)."""

    page: str = "straight_pairs"
    target: str = "moons"
    seed: int = 0
    n_data: int = 1000
    h: float = 0.05
    t: float = 0.5
    BOUNDS: ClassVar[dict] = {"seed": (0, 2**31 - 1), "n_data": (2, data.MAX_POINTS),
                              "h": (0.0, 1.0), "t": (0.0, 0.99)}  # what from_dict accepts

    def command(self, out: str = "figures") -> str:
        """The equivalent command line."""
        return " ".join(["python -m flowviz figure", self.page, "--target", self.target,
                         "--seed", str(self.seed), "--n-data", str(self.n_data), "--h",
                         f"{self.h:g}", "--t", f"{self.t:g}", "--out", shlex.quote(out)])


@dataclass
class Panel:
    """One figure, the arrays behind it (for NPZ) and an optional trajectory (T, N, 2)."""

    fig: object
    arrays: dict = dataclasses.field(default_factory=dict)
    traj: torch.Tensor | None = None
    ts: torch.Tensor | None = None


def pairs_section(x0: torch.Tensor, x1: torch.Tensor, seed: int, n: int = 150,
                  lim: float = LIM, couplings=("Independent", "Minibatch-OT"),
                  height: int = 460) -> dict[str, tuple[Panel, dict]]:
    """Straight pairs §1 (article §2, §2.1): the first n noise points paired with a seeded
    shuffle of the data, independently and/or by minibatch OT (``couplings``); panels and their
    coupling metrics."""
    n = min(n, len(x0), len(x1))
    shuffle = torch.randperm(len(x1), generator=torch.Generator().manual_seed(seed))
    a0, a1 = x0[:n], x1[shuffle[:n]]
    pair = {"Independent": lambda: (a0, a1), "Minibatch-OT": lambda: data.minibatch_ot(a0, a1)}
    out = {}
    for name in couplings:
        a, b = pair[name]()
        out[name] = (Panel(viz.pair_lines_fig(a, b, f"{name} pairs", n, lim, height),
                           {"x0": a, "x1": b}), coupling_metrics(a, b))
    return out


def field_section(field: ExactField, x0: torch.Tensor, t: float, lim: float = LIM,
                  n_grid: int = 21, n_heat: int = 61, steps: int = 50, height: int = 460):
    """Straight pairs §2 (article §2.1): v*(x, t) over log10 tr Cov[x1 - x0 | x_t = x], and the
    exact trajectories from x0 (RK4) with x_t marked. Returns (field panel, paths panel,
    path metrics)."""
    pts, _, _ = grid(lim * 0.9, n_grid)
    v = field_on(field, pts, t)
    hx = torch.linspace(-lim, lim, n_heat)
    hpts = torch.stack(torch.meshgrid(hx, hx, indexing="xy"), -1).reshape(-1, 2)
    var = field.velocity_cov(hpts, t).diagonal(dim1=1, dim2=2).sum(1).reshape(n_heat, n_heat)
    fig = viz.field_fig(pts, v, f"Exact field v* at t = {t:.2f}",
                        heat=(hx, hx, np.log10(var.numpy() + 1e-3)),
                        heat_name="spread of directions (log₁₀)", lim=lim, scale=0.25,
                        height=height)
    field_panel = Panel(fig, {"points": pts, "v": v, "heat_x": hx, "tr_cov": var})
    paths = path_metrics(field, x0, steps=steps)
    traj = paths["traj"]
    fig = viz.trajectories_fig(traj, "Exact paths (RK4) and their chords", lim=lim,
                               height=height)
    viz.scatter(fig, traj[int(round(t * (len(traj) - 1)))], f"x_t at t = {t:.2f}", "#111827", 5,
                0.9)
    return field_panel, Panel(fig, traj=traj, ts=paths["ts"]), paths


def straight_pairs(spec: FigureSpec, n_paths: int = 200) -> dict[str, Panel]:
    """The page's sections 1-2 for ``spec``, with the page's data and seeds."""
    x1 = data.sample(spec.target, spec.n_data, spec.seed)[0]
    x0 = data.sample("gaussian", len(x1), spec.seed + 1)[0]
    panels = {f"pairs-{k.lower()}": p for k, (p, _) in pairs_section(x0, x1, spec.seed).items()}
    field, paths, _ = field_section(ExactField(x1, h=spec.h), x0[:n_paths], spec.t)
    return panels | {"field": field, "exact-traj": paths}


# labels name the method, so every chart colours them alike (style.method_color)
ODES = {"vp": "Diffusion: exact VP PF-ODE", "linear": "Flow matching: exact v*"}


def ode_geometry(field, x0: torch.Tensor, t1: float, steps: int = 32) -> dict:
    """Diffusion vs FM §1 (article §1.1-1.2): RK4 paths of one exact ODE from x0 up to t1, their
    metrics, and the mean speed E‖v(x_t, t)‖ at each saved time ("speed": (ts, speeds))."""
    pm = path_metrics(field, x0, steps=steps, t1=t1)
    ts = pm["ts"]
    speed = [float(field_on(field, pm["traj"][i], float(ts[i])).norm(dim=1).mean())
             for i in range(len(ts))]
    return pm | {"speed": (ts.numpy(), np.array(speed))}


def ode_section(geo: dict, lim: float = LIM) -> dict[str, Panel]:
    """The trajectories of each ODE ("vp", "linear") and their mean speed over time."""
    out = {f"traj-{k}": Panel(viz.trajectories_fig(g["traj"], f"{ODES[k]} · its paths",
                                                   lim=lim, height=420), traj=g["traj"], ts=g["ts"])
           for k, g in geo.items()}
    speed = {ODES[k]: g["speed"] for k, g in geo.items()}
    fig = viz.curves_fig(speed, "Mean speed ‖dx/dt‖ along the paths", "t", "mean ‖v(x_t, t)‖",
                         logy=True, markers=False)
    arrays = {f"{k}_{a}": v for k, (ts, sp) in zip(geo, speed.values(), strict=True)
              for a, v in (("t", ts), ("speed", sp))}
    return out | {"speed": Panel(fig, arrays)}


def diffusion_vs_fm(spec: FigureSpec, n_paths: int = 150) -> dict[str, Panel]:
    """The page's section 1 for ``spec``: both exact ODEs on the same data and noise."""
    x1 = data.sample(spec.target, spec.n_data, spec.seed)[0]
    x0 = data.sample("gaussian", 1000, spec.seed + 1)[0][:n_paths]
    geo = {k: ode_geometry(ExactField(x1, PATHS[k], h=spec.h), x0, PATHS[k].t_max) for k in ODES}
    return ode_section(geo)


def one_step_jumps(field: ExactField, x0: torch.Tensor, steps: int, n_ref: int = 1000) -> dict:
    """MeanFlow §1 (article §6): one Euler step of v* against one jump of u*(x0, 0, 1), which is
    the exact flow's end (``steps`` RK4 steps); energy distances to ``n_ref`` target samples and
    between two target samples (the estimate's noise)."""
    ref = field.sample_target(n_ref, torch.Generator().manual_seed(99))
    euler = x0 + field(x0, torch.zeros(len(x0)))
    flow = trajectory(field, x0, steps=steps)
    again = field.sample_target(len(x0), torch.Generator().manual_seed(7))
    return {"x0": x0, "euler": euler, "jump": flow.x, "traj": flow.traj, "ts": flow.ts,
            "ed_euler": energy_distance(euler, ref), "ed_jump": energy_distance(flow.x, ref),
            "ed_noise": energy_distance(again, ref)}


def jumps_panel(jj: dict, data_pts: torch.Tensor, lim: float = 3.5) -> Panel:
    fig = jumps_fig(jj["x0"], {"one step of v*: x0 + v*(x0, 0)": jj["euler"],
                               "one jump of u*: x0 + u*(x0, 0, 1)": jj["jump"]},
                    data_pts, "One step from noise, exact fields", lim=lim)
    return Panel(fig, {"x0": jj["x0"], "euler": jj["euler"], "jump": jj["jump"]},
                 traj=jj["traj"], ts=jj["ts"])


def meanflow(spec: FigureSpec, n: int = 200) -> dict[str, Panel]:
    """The page's one-step picture for ``spec`` (12 RK4 steps, 60 when h = 0, as the page)."""
    x1 = data.sample(spec.target, spec.n_data, spec.seed)[0]
    x0 = data.sample("gaussian", n, spec.seed + 1)[0]
    jj = one_step_jumps(ExactField(x1, h=spec.h), x0, 12 * (1 if spec.h > 0 else 5))
    return {"mf-jumps": jumps_panel(jj, x1[:600])}


def exact_coupling(field: ExactField, x0: torch.Tensor, steps: int = 8) -> tuple:
    """ReFlow §1 (article §3, eq. 6): (x0, Φ*(x0)), the pairs the exact 1-rectified flow makes
    (RK4), with no training."""
    return x0, solve(field, x0, "rk4", steps).x.float()


def couplings_section(couplings: dict, n_show: int = 150, n_metrics: int = 300,
                      lim: float = LIM) -> dict[str, tuple[Panel, dict]]:
    """Pair lines of each coupling (title -> (x0, x1)) and its metrics (crossings on
    n_metrics pairs, transport cost)."""
    return {t: (Panel(viz.pair_lines_fig(a, b, t, n_show, lim, height=400), {"x0": a, "x1": b}),
                coupling_metrics(a, b, n_metrics))
            for t, (a, b) in couplings.items()}


def reflow(spec: FigureSpec, n: int = 300) -> dict[str, Panel]:
    """The page's section 1: independent pairs, the exact 1-RF's pairs, minibatch-OT pairs."""
    x1 = data.sample(spec.target, spec.n_data, spec.seed)[0]
    x0 = data.sample("gaussian", len(x1), spec.seed + 1)[0]
    perm = torch.randperm(len(x1), generator=torch.Generator().manual_seed(spec.seed))
    indep = (x0[:n], x1[perm[:n]])
    couplings = {"Independent pairs (1-RF)": indep,
                 "Exact 1-RF's pairs (rectified)": exact_coupling(
                     ExactField(x1, h=spec.h), data.sample("gaussian", n, spec.seed + 1)[0]),
                 "Minibatch-OT pairs": data.minibatch_ot(*indep)}
    names = ("independent", "rectified", "ot")
    return {f"coupling-{k}": p for k, (p, _) in zip(names, couplings_section(couplings).values(),
                                                       strict=True)}


def euler_clouds(field: ExactField, x0: torch.Tensor, ref: torch.Tensor,
                 ms=(1, 4, 32)) -> dict[int, tuple[torch.Tensor, float]]:
    """Shortcut §1 (article §5): m Euler steps of the exact field v* (the best a flow-matching
    model can do) and each cloud's energy distance to ``ref``."""
    out = {}
    for m in ms:
        x = solve(field, x0, "euler", m).x.float()
        out[m] = (x, energy_distance(x, ref))
    return out


def clouds_section(clouds: dict, ref: torch.Tensor, lim: float = LIM) -> dict[int, Panel]:
    return {m: Panel(viz.clouds_fig({"data": ref, f"{m} Euler step{'s' * (m > 1)}": x},
                                    f"Exact v*, {m} Euler step{'s' * (m > 1)} · ED {ed:.3f}",
                                    lim, 330), {"x": x, "data": ref})
            for m, (x, ed) in clouds.items()}


def shortcut(spec: FigureSpec, n: int = 600) -> dict[str, Panel]:
    """The page's "why": even the exact FM field needs many Euler steps."""
    field = ExactField(data.sample(spec.target, spec.n_data, spec.seed)[0], h=spec.h)
    x0 = data.sample("gaussian", n, spec.seed + 1)[0]
    ref = field.sample_target(n, torch.Generator().manual_seed(99))
    return {f"exact-euler-{m}": p
            for m, p in clouds_section(euler_clouds(field, x0, ref), ref).items()}


PAGES = {"straight_pairs": straight_pairs, "diffusion_vs_fm": diffusion_vs_fm,
         "reflow": reflow, "shortcut": shortcut, "meanflow": meanflow}


def write(spec: FigureSpec, out: str | Path, formats=("png", "svg", "csv")) -> list[Path]:
    """Write each figure of the page in ``formats`` (png, svg, csv, npz, gif) and the spec as
    config.json into ``out``; returns the paths written."""
    from .viz import export
    from .viz.animate import trajectory_gif

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "config.json"]
    written[0].write_text(spec.to_json())
    for name, p in PAGES[spec.page](spec).items():
        arrays = p.arrays | ({"traj": p.traj, "ts": p.ts} if p.traj is not None else {})
        files = {
            "png": lambda p=p: export.image_bytes(p.fig, "png"),
            "svg": lambda p=p: export.image_bytes(p.fig, "svg"),
            "csv": lambda p=p: export.figure_csv(p.fig).encode(),
            "npz": (lambda a=arrays: export.npz_bytes(a)) if arrays else None,
            "gif": (lambda p=p: trajectory_gif(p.traj, p.ts, p.fig.layout.title.text or ""))
            if p.traj is not None else None,
        }
        for fmt in formats:
            if files.get(fmt) is not None:
                path = out / f"{name}.{fmt}"
                path.write_bytes(files[fmt]())
                written.append(path)
    return written


def add_parser(sub) -> None:
    """The ``figure`` subcommand of ``python -m flowviz``."""
    f = sub.add_parser("figure", help="write a page's main figures (PNG/SVG/CSV/NPZ/GIF)")
    f.add_argument("page", choices=sorted(PAGES))
    f.add_argument("--target", default=FigureSpec.target, choices=sorted(data.SAMPLERS))
    f.add_argument("--seed", type=SEED, default=FigureSpec.seed)
    f.add_argument("--n-data", type=bounded(2, data.MAX_POINTS), default=FigureSpec.n_data)
    f.add_argument("--h", type=bounded(0.0, 1.0, float), default=FigureSpec.h)
    f.add_argument("--t", type=bounded(0.0, 0.99, float), default=FigureSpec.t,
                   help="time of the field panel")
    f.add_argument("--out", default="figures", help="output folder")
    f.add_argument("--formats", nargs="+", default=["png", "svg", "csv"],
                   choices=["png", "svg", "csv", "npz", "gif"])


def cmd_figure(a) -> int:
    writable_dir(a.out)
    spec = FigureSpec(a.page, a.target, a.seed, a.n_data, a.h, a.t)
    for path in write(spec, a.out, a.formats):
        print(path)
    return 0
