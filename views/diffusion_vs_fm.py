"""Diffusion PF-ODE vs flow matching (article §1.1, §1.2).

The lesson: both ODEs computed exactly from the same data (the VP-diffusion probability-flow ODE
from the closed-form score, and the rectified-flow field v*), their paths from the same noise;
the question (which reaches a small error with fewer function evaluations?); the error vs NFE
and the speed along the paths answer it. Deeper: samples at a budget, NFE needed per solver.
"""

import numpy as np
import streamlit as st

import flowviz as fv
from flowviz.analysis import NFES, adaptive_point, quality_vs_nfe
from flowviz.metrics import rms_error
from flowviz.paths import PATHS
from flowviz.reproduce import ODES, ode_geometry, ode_section
from views.cache import cached, exact_field, source_points
from views.charts import chart
from views.reproduce import reproduce_box
from views.state import page_settings
from views.teach import ask, deeper, verdict, waiting

LIM, N_PATHS, N_EVAL, N_ERR, THRESHOLD = 4.5, 150, 1000, 256, 0.05
SOLVERS = {"euler": "Euler", "midpoint": "Midpoint", "heun": "Heun", "rk4": "RK4"}
TOLS = (1e-1, 1e-2, 1e-3, 1e-4)
SAME = "About the same"


def odes(cfg) -> dict:
    """The two exact fields ("vp", "linear") on the sidebar's data."""
    return {k: exact_field(cfg, k) for k in ODES}


def noise(cfg, n: int = N_EVAL):
    return source_points("gaussian", N_EVAL, cfg.seed + 1)[:n]


@cached(show_spinner="Solving both ODEs accurately (dopri5, tol 1e-7)…")
def reference(cfg) -> dict:
    """Endpoints of N_ERR noise samples under a tight adaptive solve: the answer key every
    cheaper solve is measured against (its error, free of sampling noise)."""
    return {k: fv.solve(f, noise(cfg, N_ERR), "dopri5", rtol=1e-7, atol=1e-7,
                        t1=PATHS[k].t_max).x for k, f in odes(cfg).items()}


@cached(show_spinner="Measuring both ODEs at NFE 1…128…")
def sweep(cfg, solver: str) -> dict:
    ref = reference(cfg)
    return {k: quality_vs_nfe(f, noise(cfg, N_ERR), ref[k], solver, t1=PATHS[k].t_max,
                              metric=rms_error) for k, f in odes(cfg).items()}


@cached(show_spinner="Adaptive solver at four tolerances…")
def adaptive(cfg) -> dict:
    ref = reference(cfg)
    return {k: [adaptive_point(f, noise(cfg, N_ERR), ref[k], tol=tol, t1=PATHS[k].t_max,
                               metric=rms_error) for tol in TOLS] for k, f in odes(cfg).items()}


@cached()
def geometry(cfg) -> dict:  # also `python -m flowviz figure diffusion_vs_fm`
    return {k: ode_geometry(f, noise(cfg, N_PATHS), PATHS[k].t_max)
            for k, f in odes(cfg).items()}


def needed(nfes, errors, threshold: float) -> int | None:
    """The smallest NFE of a sweep whose error is at most ``threshold`` (None: none is)."""
    return min((n for n, e in zip(nfes, errors, strict=True) if e <= threshold), default=None)


def paths(cfg) -> dict:
    """Section 1: the two ODEs' paths from the same noise."""
    st.header("1 · Two exact ODEs from the same noise")
    geo = geometry(cfg)
    panels = ode_section(geo, LIM)
    for col, k in zip(st.columns(2), ODES, strict=True):
        with col:
            p = panels[f"traj-{k}"]
            chart(p.fig, f"traj-{k}", traj=p.traj, ts=p.ts)
    st.caption("Both carry the same noise to the same data, and neither path is learned.")
    return panels


def error_vs_nfe(cfg, panels: dict) -> None:
    """Section 2, the answer: each ODE's endpoint error vs NFE, and why (its speed)."""
    st.header("2 · Error vs NFE, and where the time goes")
    c1, c2 = st.columns([3, 1])
    chosen = c1.multiselect("Fixed-step solvers", list(SOLVERS), ["euler", "rk4"],
                            format_func=SOLVERS.get, key="dv_solvers")
    with_adaptive = c2.checkbox("Add dopri5", False, key="dv_adaptive",
                                help="The adaptive solver at tolerances 1e-1 … 1e-4.")
    curves = {f"{ODES[k]} · {SOLVERS[s]}": q for s in chosen for k, q in sweep(cfg, s).items()}
    for k, pts in (adaptive(cfg) if with_adaptive else {}).items():
        curves[f"{ODES[k]} · dopri5"] = tuple(zip(*pts, strict=True))
    left, right = st.columns(2)
    with left:
        chart(fv.viz.quality_vs_nfe_fig(curves, metric="RMS endpoint error",
                                        title="Endpoint error vs NFE (lower is better)",
                                        height=440), "dv-nfe")
    with right:
        chart(panels["speed"].fig, "speed", arrays=panels["speed"].arrays)
    rk4 = sweep(cfg, "rk4")
    nv, nf = (needed(*rk4[k], THRESHOLD) or np.inf for k in ODES)
    euler = sweep(cfg, "euler")
    ev, ef = (needed(*euler[k], THRESHOLD) for k in ODES)
    geo = geometry(cfg)
    ratio = {k: float(geo[k]["speed"][1].max() / geo[k]["speed"][1].min()) for k in ODES}
    answer = SAME if nv == nf else ODES["vp"] if nv < nf else ODES["linear"]
    verdict("dv-nfe", answer,
            f"With RK4, the diffusion ODE needs {fmt(nv)} NFE and flow matching {fmt(nf)} to "
            f"get within {THRESHOLD} of the accurate endpoints. On the right, diffusion's mean "
            f"speed at its fastest is {ratio['vp']:.0f}× its slowest (flow matching: "
            f"{ratio['linear']:.1f}×): equal steps spend its budget where it barely moves and "
            f"too little where it rushes. With Euler: {fmt(ev)} vs {fmt(ef)} NFE. On a 2-D toy "
            "the gap is far smaller than the article's 50–100 vs 10–20 NFE for images.")


def fmt(n) -> str:
    return "more than 128" if n is None or n == np.inf else str(int(n))


# --- Go deeper ----------------------------------------------------------------------------------
def samples(cfg) -> None:
    """Samples of both ODEs at one solver and budget."""
    c1, c2 = st.columns(2)
    solver = c1.selectbox("Solver", list(SOLVERS), format_func=SOLVERS.get, index=3,
                          key="dv_solver", bind="query-params")
    budgets = [n for n in NFES if n >= fv.solvers.EVALS_PER_STEP[solver]]
    nfe = c2.select_slider("NFE budget", budgets, 8 if solver != "euler" else 4, key="dv_nfe",
                           bind="query-params")
    steps = fv.solvers.steps_for_nfe(solver, nfe)
    for col, (k, f) in zip(st.columns(2), odes(cfg).items(), strict=True):
        s = fv.solve(f, noise(cfg), solver, steps, t1=PATHS[k].t_max)
        with col:
            chart(fv.viz.clouds_fig({"data": f.data[:N_EVAL].float(),
                                     f"{SOLVERS[solver]}, {s.nfe} NFE": s.x}, ODES[k], lim=LIM),
                  f"samples-{k}")
    st.caption(f"{steps} steps × {fv.solvers.EVALS_PER_STEP[solver]} evaluations = {nfe} NFE "
               "from the same 1000 noise samples.")


def nfe_table(cfg) -> None:
    """The NFE each solver needs to reach an error threshold, for both ODEs."""
    thr = st.select_slider("Error threshold (RMS distance, data units)",
                           [0.2, 0.1, 0.05, 0.02, 0.01], THRESHOLD, key="dv_thr")
    st.dataframe([{"solver": SOLVERS[s]} | {
        f"NFE needed, {ODES[k]}": fmt(needed(*q, thr)) for k, q in sweep(cfg, s).items()}
        for s in SOLVERS], key="dv-table", hide_index=True)
    st.caption(f"Smallest NFE on the grid 1, 2, 4, …, 128 whose endpoints lie within RMS "
               f"distance {thr} of the accurate ones ({N_ERR} noise samples; the data spread "
               f"is about 2, the kernel width h = {cfg.h}).")


DEEPER = {"Samples at a budget": samples, "NFE needed per solver": nfe_table}

st.title("Diffusion PF-ODE vs flow matching")
st.caption("Article §1.1 and §1.2 · the same data, the same noise, two exact ODEs")
c1, c2 = st.columns(2)
c1.markdown("**Diffusion** learns a score; its ODE comes afterwards (§1.1):")
c1.latex(r"\frac{dx}{ds}=f(s,x)-\tfrac12 g(s)^2\,\nabla_x\log p_s(x)")
c2.markdown("**Flow matching** learns the velocity on straight lines "
            "$x_t=(1-t)\\,x_0+t\\,x_1$ (§1.2):")
c2.latex(r"\frac{dx}{dt}=v^\star(x,t)")
st.caption("Neither is learned here: both come in closed form from the data (VP schedule, β from "
           "0.1 to 20, to t = 1 − 10⁻³), so every difference is the geometry of the two ODEs.")
cfg = page_settings()
if cfg.source != "gaussian":
    st.info("Both ODEs start from Gaussian noise: pick the Gaussian source in the sidebar.")
    st.stop()
panels = paths(cfg)
choice = ask("dv-nfe", "Solve both ODEs from the same noise with RK4 at 1, 2, 4, …, 128 function "
             f"evaluations (NFE). Which one gets within RMS {THRESHOLD} of its accurate "
             "endpoints with **fewer** NFE?", [ODES["vp"], ODES["linear"], SAME], "§1.1, §1.2")
if choice is None:
    waiting("Commit to a prediction above: the error vs NFE of both ODEs is drawn here.")
else:
    error_vs_nfe(cfg, panels)
section = deeper("dv_deeper", list(DEEPER))
if section:
    DEEPER[section](cfg)
reproduce_box("diffusion_vs_fm", "dv_")
