"""ReFlow: k-rectified flow, live (article §3, §3.1; Liu et al. 2022; Lee, Lin & Fanti 2024).

Train a 1-rectified flow, solve its ODE for new pairs, train a 2-rectified flow on them (and
optionally a 3-RF), each phase started by a button, paused and resumed. Then compare the rounds:
trajectories, pair lines, straightness, crossings, transport cost and quality vs NFE; the
improved-training choices of Lee et al.; why rectified pairs hardly cross; inversion data ->
noise; and minibatch OT as the alternative straightener.
"""

import dataclasses
import json

import numpy as np
import streamlit as st
import torch

import flowviz as fv
from flowviz.analysis import NFES, coupling_metrics, path_metrics, quality_vs_nfe
from flowviz.experiment import FAST_1RF
from flowviz.methods.reflow import (
    LOSSES,
    T_DISTS,
    ReflowConfig,
    huber_c,
    pair_phase,
    reflow_state,
    segment_crossing,
    time_pdf,
)
from flowviz.models import MLPConfig
from flowviz.reproduce import couplings_section, exact_coupling
from flowviz.solvers import ADAPTIVE, METHODS
from flowviz.viz.reflow import as_svg, crossing_fig, hist_pdf_fig, qq_fig
from views.cache import cached, data_points, exact_field, exact_nfe_curve, source_points
from views.charts import chart
from views.reproduce import reproduce_box
from views.results import results
from views.state import NAMES, device, page_settings, run_key, uploaded_points
from views.teach import notice, predict
from views.training import live_training

LIM, N_LINES, N_PATHS, N_EVAL, N_CROSS, FLOOR = 4.5, 150, 200, 2000, 300, 1e-4
ROUND_NAMES = {1: "1-RF", 2: "2-RF", 3: "3-RF"}
T_LABELS = {"uniform": "uniform", "u_shaped": "U-shaped", "logit_normal": "logit-normal"}
LOSS_LABELS = {"squared": "squared error", "pseudo_huber": "pseudo-Huber"}


def ed_floor(q):
    """Energy distances for log axes: unbiased estimates can dip below 0 (noise)."""
    return [max(FLOOR, v) for v in q]


@cached(show_spinner=False, max_entries=16)
def exact_pairs(cfg, n: int = N_CROSS):
    """(x0, Phi*(x0)): the coupling of the exact 1-RF field v* (RK4, 8 steps), no training."""
    return exact_coupling(exact_field(cfg), source_points("gaussian", n, cfg.seed + 1))


def pair_progress(p):
    fwd = len(p.forward.x)
    back = f" + {len(p.backward.x)} data points inverted" if p.backward is not None else ""
    return (p.n_done / max(1, p.n_total),
            f"{p.n_done} / {p.n_total} rows solved ({fwd} pairs{back}) · {p.nfe} NFE · "
            f"{p.seconds:.1f} s")


def status_line(phase: str, state, waiting: str = "", slot=None) -> None:
    """One line per phase: not started / waiting / running / paused / done, with its cost.
    Filled after the phase's controls ran (``slot``: an st.empty above them)."""
    if state is None:
        s = waiting or "not started"
    elif state.status == "nan":
        s = "stopped (NaN)"
    elif state.done:
        s = f"**done** in {state.seconds:.1f} s"
    else:
        key = next((k for k, v in st.session_state.get("runs", {}).items() if v is state), "")
        s = "running…" if st.session_state.get(f"running:{key}") else "paused"
    (slot or st).markdown(f"**{phase}** · status: {s}")


st.title("ReFlow: train on your own pairs, and the flow straightens")
st.caption("Article §3 and §3.1 · Liu et al. 2022 (rectified flow, reflow) · Lee, Lin & Fanti "
           "2024 (improving the training of rectified flows)")

cfg = page_settings()
gaussian_source = cfg.source == "gaussian"
dev = device(cfg)
x1_all = data_points(cfg.target, cfg.n_data, cfg.seed, cfg.upload)
x0_all = source_points(cfg.source, len(x1_all), cfg.seed + 1, cfg.upload)
data_key = (cfg.source, cfg.target, cfg.n_data, cfg.seed, cfg.h, cfg.upload, str(dev))
runs = st.session_state.setdefault("runs", {})
n_show, n_cross = min(N_LINES, len(x0_all)), min(N_CROSS, len(x0_all))
perm = torch.randperm(len(x1_all), generator=torch.Generator().manual_seed(cfg.seed))
indep = (x0_all[:n_cross], x1_all[perm[:n_cross]])  # the first n_show are drawn

# --- 1. Couplings ------------------------------------------------------------------------------
st.header("1 · Which pairs a flow is trained on")
st.markdown(
    "A rectified flow regresses $v(x_t, t)$ on $x_1 - x_0$ along the straight line of each pair. "
    "**Independent** pairs cross everywhere, so the learned field averages conflicting "
    "directions and its paths bend. **Reflow** (article eq. 6) retrains on the pairs "
    "$(x_0, \\Phi_k(x_0))$ that the current flow itself makes: a deterministic coupling whose "
    "lines hardly cross, so the next flow can be almost straight.")
panels = [("Independent pairs (1-RF)", indep)]
if gaussian_source:
    panels.append(("Exact 1-RF's pairs (rectified)", exact_pairs(cfg, n_cross)))
panels.append(("Minibatch-OT pairs", fv.data.minibatch_ot(*indep)))
sec1 = couplings_section(dict(panels), n_show, N_CROSS, LIM)  # also `python -m flowviz figure`
cm = {title: m for title, (_, m) in sec1.items()}  # coupling metrics, for the question below
for col, (title, (p, m)) in zip(st.columns(len(panels)), sec1.items(), strict=True):
    with col:
        chart(p.fig, f"rf-coupling-{title}", arrays=p.arrays)
        k1, k2 = st.columns(2)
        k1.metric("Crossing pairs of lines", f"{100 * m['crossing_fraction']:.1f} %")
        k2.metric("Transport cost", f"{m['transport_cost']:.2f}", help="E‖x1 − x0‖²")
if gaussian_source:
    st.caption("The middle panel needs no training: it solves the closed-form field v* of the "
               "data (flowviz.exact) from each x0. Training below does the same with a network.")
notice("Reflow changes only *which* pairs are joined, not the straight-line training: pairs made "
       "by a flow's own ODE are deterministic and their lines hardly cross, so the next flow has "
       "few conflicting directions to average and comes out nearly straight.", "§3, §3.1")
if gaussian_source:
    ci, cr = (100 * cm[k]["crossing_fraction"] for k in (panels[0][0], panels[1][0]))
    predict("rf-cross", "Pair each noise sample x0 with the point the exact 1-rectified flow "
            "carries it to, (x0, Φ(x0)). Compared with independent pairs, how many of these "
            "pairs' straight lines cross?", ["Far fewer", "About as many", "More"],
            "Far fewer" if cr < 0.5 * ci else "More" if cr > 1.2 * ci else "About as many",
            f"Measured on {n_cross} pairs of this data: {ci:.1f} % of pairs of lines cross for "
            f"independent pairs, {cr:.1f} % for the flow's own pairs. Two ODE paths can never "
            "be at the same place at the same time (v* is one direction per (x, t)), so the "
            "flow's pairs are already sorted: start points that are close end close. A flow "
            "trained on these pairs (2-RF) has little left to average.", "§3.1")

# --- 2. The pipeline -----------------------------------------------------------------------------
st.header("2 · Run the pipeline, one phase at a time")
nothing_yet = st.empty()  # filled after phase 1's controls (which may load its preset)

st.subheader("Phase 1 · train the 1-rectified flow")
c1, c2, c3, c4, c5 = st.columns(5)
coupling = c1.selectbox("Coupling", ["independent", "ot"], key="rf_coupling", bind="query-params",
                        format_func={"independent": "independent", "ot": "minibatch OT"}.get)
P1 = FAST_1RF  # the project's 1-RF preset: the defaults below
steps1 = c2.select_slider("Steps", [100, 300, 500, 700, 1000, 2000, 3000, 5000], P1.optim.steps,
                          key="rf_steps1", bind="query-params")
hidden = c3.select_slider("Width", [64, 128, 256], P1.model.hidden, key="rf_hidden")
batch1 = c4.select_slider("Batch", [128, 256, 512, 1024], P1.batch, key="rf_batch1")
lr1 = c5.select_slider("Learning rate", [1e-3, 3e-3, 5e-3, 1e-2, 2e-2], P1.optim.lr,
                       key="rf_lr1")


def fm_run(coupling: str) -> fv.FMRun:
    return fv.FMRun(source=cfg.source, target=cfg.target, coupling=coupling, n_data=cfg.n_data,
                    data_seed=cfg.seed, h=cfg.h, batch=batch1, model=MLPConfig(hidden=hidden),
                    optim=dataclasses.replace(P1.optim, steps=steps1, lr=lr1, seed=cfg.seed))


def rf1_key(coupling: str) -> str:
    return run_key("rf1", fm_run(coupling), cfg.upload, str(dev))


def rf1_meta(coupling: str) -> dict:
    name = {"independent": "independent", "ot": "minibatch OT"}[coupling]
    return {"label": f"1-RF · {name} · w{hidden} · {steps1} steps", "data": data_key,
            "round": 1, "coupling": coupling}


k1 = rf1_key(coupling)
slot = st.empty()
st1 = live_training(k1, lambda: fv.build_fm(fm_run(coupling), dev, uploaded_points()),
                    meta=rf1_meta(coupling), start="Train 1-RF", preset=fm_run(coupling))
status_line("Phase 1 · 1-RF", st1, slot=slot)
if not any(k.startswith("rf1:") and v.meta.get("data") == data_key for k, v in runs.items()):
    nothing_yet.info("**Nothing is trained yet.** Press **Train 1-RF** below to start. Each "
                     "phase starts only when you press its button, can be paused and resumed, "
                     "and finished rounds are kept: change a setting, run again, and compare the "
                     "runs in section 3.")


def pairs_key(prev_key: str) -> str:
    return run_key("rfp", prev_key, pcfg)


def t_label() -> str:
    return {"uniform": "uniform t", "u_shaped": f"U(a={a:g})",
            "logit_normal": f"logit-normal(s={ln_std:g})"}[t_dist]


def round_meta(k: int, pk: str) -> dict:
    lbl = LOSS_LABELS[loss] + (f" c={c_huber:g}" if loss == "pseudo_huber" and c_huber else "")
    return {"label": f"{ROUND_NAMES[k]} · {t_label()} · {lbl} · p={p_real:g} · "
                     f"init {init} · {n_pairs} pairs · {steps2} steps",
            "data": data_key, "round": k, "pairs_key": pk}


def pair_phase_ui(k: int, prev_key: str, prev_state) -> tuple[str, object]:
    """Phase 'solve round k's ODE for pairs' (k = 1: for the 2-RF): its live controls."""
    pk = pairs_key(prev_key)
    waiting = "" if prev_state is not None and prev_state.done else \
        f"waiting for the {ROUND_NAMES[k]} to finish"
    slot = st.empty()
    status_line(f"Pairs from the {ROUND_NAMES[k]}", runs.get(pk), waiting, slot)
    if waiting and pk not in runs:
        return pk, None
    x0p = source_points(cfg.source, n_pairs, cfg.seed + 100 + k, cfg.upload).to(dev)
    state = live_training(
        pk, lambda: pair_phase(prev_state.sampler_model, x0p, pcfg, x1_all.to(dev)),
        chunk=1, meta={"data": data_key, "from": prev_key}, advance=lambda s, n: s.advance(n),
        progress=pair_progress, start=f"Generate pairs from the {ROUND_NAMES[k]}",
        preset=(f"pairs{k + 1}", fm_run(coupling), pcfg), after=prev_state)
    status_line(f"Pairs from the {ROUND_NAMES[k]}", state, waiting, slot)
    return pk, state


def train_phase_ui(k: int, pk: str, pstate, prev_state) -> tuple[str, object]:
    """Phase 'train the k-RF on the pairs of round k - 1'."""
    key = run_key(f"rf{k}", pk, rcfg)
    waiting = "" if pstate is not None and pstate.done else "waiting for its pairs"
    slot = st.empty()
    status_line(f"Train the {ROUND_NAMES[k]}", runs.get(key), waiting, slot)
    if waiting and key not in runs:
        return key, None

    def build():
        pairs, real = pstate.result()
        return reflow_state(prev_state.sampler_model, pairs, rcfg, real, round_k=k)

    state = live_training(key, build, meta=round_meta(k, pk), start=f"Train {ROUND_NAMES[k]}",
                          preset=(f"rf{k}", fm_run(coupling), rcfg), after=pstate)
    status_line(f"Train the {ROUND_NAMES[k]}", state, waiting, slot)
    return key, state


st.subheader("Phase 2 · solve the 1-RF ODE for new pairs")
c1, c2, c3, c4 = st.columns(4)
solver = c1.selectbox("Solver", list(METHODS), index=METHODS.index("dopri5"), key="rf_solver",
                      help="Adaptive (dopri5) by default: the pairs should be the flow's own map, "
                           "not a solver's approximation of it.")
n_pairs = c2.select_slider("Pairs", [1000, 2000, 5000, 10_000, 20_000], 10_000, key="rf_pairs",
                           help="How many (x0, x1') pairs the next round trains on.")
if solver in ADAPTIVE:
    tol = c3.select_slider("Tolerance", [1e-3, 1e-4, 1e-5, 1e-6], 1e-4, key="rf_tol",
                           format_func=lambda v: f"{v:.0e}")
    steps_solver = 64
else:
    steps_solver = c3.select_slider("Solver steps", [1, 2, 4, 8, 16, 32, 64, 128], 32,
                                    key="rf_solver_steps")
    tol = 1e-4
c4.caption("The real data points are also solved backward (data → noise): the real pairs that "
           "the mixing control p uses, and the inversion of section 5.")
pcfg = ReflowConfig(n_pairs=n_pairs, solver=solver, steps=steps_solver, tol=tol, chunk=1000,
                    n_real=len(x1_all))  # the pair phase's fields of the round's config
pk2, pst2 = pair_phase_ui(1, k1, st1)

st.subheader("Phase 3 · train the 2-rectified flow: the improved-training choices")
st.caption("Lee, Lin & Fanti 2024 show one reflow is enough when that round is trained well. "
           "Each control below changes one thing in the 2-RF (and 3-RF) training:")
c1, c2, c3 = st.columns([1, 1, 1.2])
with c1:
    t_dist = st.selectbox("Timestep distribution", list(T_DISTS), index=1, key="rf_tdist",
                          format_func=T_LABELS.get)
    a = st.slider("U-shape a", 0.0, 8.0, 4.0, 0.5, key="rf_a", disabled=t_dist != "u_shaped")
    ln_std = st.slider("Logit-normal scale s", 0.3, 2.0, 1.0, 0.1, key="rf_lnstd",
                       disabled=t_dist != "logit_normal")
    st.caption("Where on [0, 1] the loss is sampled. 2-RF's error is largest near t = 0 and "
               "t = 1, so the U-shape $p(t) \\propto e^{at} + e^{a(1-t)}$ ($a = 4$ in the paper) "
               "spends more samples there; logit-normal (SD3) does the opposite.")
with c2:
    loss = st.selectbox("Loss", list(LOSSES), key="rf_loss", format_func=LOSS_LABELS.get)
    c_opts = [0.0, 0.001, 0.01, 0.1, 1.0]
    c_huber = st.select_slider("Pseudo-Huber c", c_opts, 0.0, key="rf_c",
                               disabled=loss != "pseudo_huber",
                               format_func=lambda v: f"paper: {huber_c(2):.5f}" if v == 0 else
                               f"{v:g}")
    st.caption("Pseudo-Huber $\\sqrt{\\|r\\|^2 + c^2} - c$ is quadratic below $c$ and linear "
               "above, so a few bad pairs pull less. On images the paper uses LPIPS-Huber, its "
               "perceptual version.")
    p_real = st.slider("Real-data mixing p", 0.0, 1.0, 0.0, 0.05, key="rf_preal")
    st.caption("Probability that a training pair is a real data point with the noise the "
               "1-RF maps to it (found by solving backward), instead of a generated pair.")
with c3:
    init = st.radio("Initialise the 2-RF from", ["previous", "scratch"], key="rf_init",
                    horizontal=True, format_func={"previous": "the 1-RF (paper)",
                                                  "scratch": "scratch"}.get)
    st.caption("Starting from the 1-RF weights, the 2-RF only has to unbend the field, not "
               "learn the data again.")
    d1, d2 = st.columns(2)
    steps2 = d1.select_slider("2-RF steps", [100, 300, 500, 1000, 2000, 3000], 2000,
                              key="rf_steps2")
    lr2 = d2.select_slider("2-RF learning rate", [3e-4, 1e-3, 3e-3, 1e-2], 3e-3, key="rf_lr2")

rcfg = dataclasses.replace(pcfg, t_dist=t_dist, a=a, ln_std=ln_std, loss=loss, c=c_huber,
                           p_real=p_real, init=init, batch=batch1,
                           optim=dataclasses.replace(pcfg.optim, steps=steps2, lr=lr2,
                                                     seed=cfg.seed))
ts = rcfg.sampler()(20_000, torch.zeros(1), torch.Generator().manual_seed(0))
grid_t = torch.linspace(0.002, 0.998, 300)
with c3:
    chart(hist_pdf_fig(ts, grid_t, time_pdf(t_dist, grid_t, a, 0.0, ln_std),
                       f"{T_LABELS[t_dist]} timesteps: 20 000 draws vs p(t)", "t", bins=25,
                       rng=(0.0, 1.0), height=280, pdf_name="p(t)", legend=False), "rf-tdist")

k2, st2 = train_phase_ui(2, pk2, pst2, st1)
pipeline = {1: (k1, st1), 2: (k2, st2)}
with st.expander("Optional: a third round (3-RF, from the 2-RF's pairs, same settings)",
                 expanded=st2 is not None and st2.done):
    pk3, pst3 = pair_phase_ui(2, k2, st2)
    k3, st3 = train_phase_ui(3, pk3, pst3, st2)
    pipeline[3] = (k3, st3)


# --- 3. Round by round ---------------------------------------------------------------------------
def training_coupling(state, n: int = n_cross):
    """The pairs a round was trained on: independent/OT samples (1-RF) or its reflow pairs."""
    pairs = state.meta.get("pairs")
    if pairs is not None:
        return pairs.x0[:n].cpu(), pairs.x1[:n].cpu()
    return fv.data.minibatch_ot(*indep) if state.meta.get("coupling") == "ot" else indep


def evaluate(key: str, state) -> dict:
    """Quality vs NFE (Euler) and path metrics of a run, cached per (run, step)."""
    res = results("rf_results")
    rk = (key, state.step)
    if rk not in res:
        model = state.sampler_model.eval()
        x0e = source_points(cfg.source, N_EVAL, cfg.seed + 2, cfg.upload).to(dev)
        ref = exact_field(cfg).sample_target(N_EVAL, torch.Generator().manual_seed(99)) \
            if gaussian_source else data_points(cfg.target, N_EVAL, cfg.seed + 3, cfg.upload)
        with torch.no_grad():
            paths = path_metrics(model, x0_all[:N_PATHS].to(dev), steps=50)
        res[rk] = {"nfe": quality_vs_nfe(model, x0e, ref.to(dev)),
                   "paths": {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in paths.items()},
                   "train": coupling_metrics(*training_coupling(state), N_CROSS)}
    return res[rk]


trained = {k: (key, s) for k, (key, s) in pipeline.items() if s is not None and s.step > 0}
st.header("3 · Round by round")
if not trained:
    st.caption("The rounds appear here as soon as they have trained a little.")
else:
    cols = st.columns(max(2, len(trained)))
    for col, (k, (key, s)) in zip(cols, trained.items(), strict=False):
        r = evaluate(key, s)
        with col:
            st.markdown(f"#### {ROUND_NAMES[k]}" + ("" if s.done else " (training…)"))
            chart(as_svg(fv.viz.trajectories_fig(r["paths"]["traj"], f"{ROUND_NAMES[k]} "
                                                 "trajectories (RK4, 50 steps)", lim=LIM,
                                                 height=380)), f"rf-traj-{k}",
                  traj=r["paths"]["traj"], ts=r["paths"]["ts"])
            a_, b_ = training_coupling(s)
            chart(as_svg(fv.viz.pair_lines_fig(a_, b_, f"Pairs the {ROUND_NAMES[k]} was "
                                               "trained on", n_show, LIM, height=380)),
                  f"rf-train-pairs-{k}")
            m1, m2 = st.columns(2)
            m1.metric(f"Straightness S ({ROUND_NAMES[k]})", f"{r['paths']['straightness']:.4f}",
                      help="∫ E‖(x1 − x0) − dx_t/dt‖² dt (Liu et al. 2022); 0 for straight paths.")
            m2.metric(f"Turning angle ({ROUND_NAMES[k]})",
                      f"{np.degrees(r['paths']['curvature']):.1f}°",
                      help="Mean total turning ∫|κ| ds of a path.")
            m1.metric(f"Crossings of its training pairs ({ROUND_NAMES[k]})",
                      f"{100 * r['train']['crossing_fraction']:.1f} %")
            m2.metric(f"Transport cost E‖x1 − x0‖² ({ROUND_NAMES[k]})",
                      f"{r['paths']['transport_cost']:.3f}",
                      help="Of the coupling the flow induces, x0 → Φ(x0).")
            st.caption(f"Its own pair lines x0 → Φ(x0) cross in "
                       f"{100 * r['paths']['crossing_fraction']:.2f} % of pairs. "
                       f"1-step energy distance: {r['nfe'][1][0]:.4f}.")

# every finished or partly trained run on this data, to overlay
all_runs = {key: s for key, s in runs.items() if key.startswith(("rf1:", "rf2:", "rf3:"))
            and s.meta.get("data") == data_key and s.step > 0}
if all_runs:
    st.subheader("Quality vs NFE: one line per round, and any other run of this session")
    labels = {key: s.meta["label"] for key, s in all_runs.items()}
    shown = st.multiselect("Runs shown (every run of this session on this data is kept)",
                           list(all_runs), default=list(all_runs), format_func=labels.get,
                           key=f"rf_overlay:{hash(tuple(all_runs))}")  # new run: all shown
    curves, rows = {}, []
    if gaussian_source:
        n_, q_ = exact_nfe_curve(cfg)
        curves["exact 1-RF field v*"] = (n_, ed_floor(q_))
    for key in shown:
        s = all_runs[key]
        r = evaluate(key, s)
        curves[labels[key]] = (r["nfe"][0], ed_floor(r["nfe"][1]))
        q = dict(zip(*r["nfe"], strict=True))
        pairs_s = runs[s.meta["pairs_key"]].seconds if s.meta.get("pairs_key") in runs else 0.0
        rows.append({"run": labels[key],
                     "trained": "done" if s.done else f"step {s.step} / {s.cfg.steps}",
                     "ED @1": q[1], "ED @2": q[2], "ED @4": q[4],
                     "ED @128": q[128], "straightness": r["paths"]["straightness"],
                     "turning (°)": np.degrees(r["paths"]["curvature"]),
                     "own crossings %": 100 * r["paths"]["crossing_fraction"],
                     "E‖x1−x0‖²": r["paths"]["transport_cost"],
                     "train s": s.seconds, "pairs s": pairs_s})
    fig = fv.viz.quality_vs_nfe_fig(curves, title="Quality vs NFE, Euler (energy distance to "
                                    "the data, lower is better)", height=500)
    fig.update_layout(legend=dict(y=-0.2), margin=dict(b=90))  # clear of the NFE axis title
    chart(fig, "rf-nfe")
    st.dataframe(rows, key="rf-table", hide_index=True, column_config={
        "run": st.column_config.TextColumn(width="large"), **{
            c: st.column_config.NumberColumn(format="%.4f")
            for c in ("ED @1", "ED @2", "ED @4", "ED @128", "straightness", "E‖x1−x0‖²")},
        **{c: st.column_config.NumberColumn(format="%.1f")
           for c in ("turning (°)", "own crossings %", "train s", "pairs s")}})
    st.caption(f"Energy distance (ED) of {N_EVAL} Euler samples to {N_EVAL} samples of the data "
               f"at NFE {', '.join(map(str, NFES))} (values under {FLOOR:g}, the estimator's "
               f"noise, are drawn at {FLOOR:g}); path metrics from {N_PATHS} RK4 trajectories. "
               "Compute: training and pair-generation seconds.")

# --- 4. The non-crossing argument --------------------------------------------------------------
st.header("4 · Why rectified pairs hardly cross")
st.markdown(
    "Two paths of an ODE flow never meet at the same time (the velocity at a point is unique), "
    "but their straight pair lines may still cross at *different* times. For the lines of pairs "
    "A and B to be at the same place at the same time t, $x_1^A - x_1^B$ must point exactly "
    "along $x_0^B - x_0^A$ (article §3.1): for pairs made by a flow that is a coincidence. Pick "
    "two pairs and see.")
couplings = {"independent pairs (1-RF's training set)": indep}
if gaussian_source:
    couplings["exact 1-RF's pairs (no training)"] = exact_pairs(cfg, n_cross)
for k in trained:
    if k + 1 in trained and trained[k + 1][1].meta.get("pairs") is not None:
        p = trained[k + 1][1].meta["pairs"]
        couplings[f"{ROUND_NAMES[k]}'s pairs ({ROUND_NAMES[k + 1]}'s training set)"] = \
            (p.x0[:n_cross].cpu(), p.x1[:n_cross].cpu())
c1, c2 = st.columns([1, 2])
with c1:
    which = st.radio("Coupling", list(couplings), key="rf_cross_coupling")
    a0, a1 = couplings[which]
    i = st.slider("Pair A", 0, n_show - 1, 0, key="rf_pair_a")

    def partner(a0=a0, a1=a1, i=i):
        """Pair B := the next pair whose line crosses A's (if there is one)."""
        hit = fv.metrics.segments_cross(a0[i], a1[i], a0[:n_show], a1[:n_show]).nonzero()
        cur = st.session_state.get("rf_pair_b", 1)
        nxt = [int(k) for k in hit.flatten() if int(k) > cur] or [int(k) for k in hit.flatten()]
        if nxt:
            st.session_state["rf_pair_b"] = nxt[0]

    j = st.slider("Pair B", 0, n_show - 1, 1, key="rf_pair_b")
    st.button("Next B whose line crosses A's", on_click=partner, key="rf_find_cross")
    cr = segment_crossing(a0[i], a1[i], a0[j], a1[j]) if i != j else \
        {"crosses": False, "angle": float("nan"), "t_a": float("nan"), "t_b": float("nan")}
    if i == j:
        st.warning("Pick two different pairs.")
    elif cr["crosses"]:
        st.markdown(f"**The lines cross**, A at t = {cr['t_a']:.2f} and B at t = "
                    f"{cr['t_b']:.2f}: at different times, so no two paths collide.")
    else:
        st.markdown("**The lines do not cross.**")
    st.metric("Angle between x1ᴬ − x1ᴮ and x0ᴮ − x0ᴬ", f"{cr['angle']:.1f}°",
              help="0° is needed for the two lines to be at one place at one time.")
with c2:
    chart(as_svg(crossing_fig(a0, a1, i, j, cr, f"Pair lines of the {which}", n_show, LIM)),
          "rf-crossing")
st.markdown(f"**Counted over {n_cross} pairs** (all {n_cross * (n_cross - 1) // 2} pairs of "
            "lines):")
cols = st.columns(len(couplings))
for col, (name, (c0, c1_)) in zip(cols, couplings.items(), strict=True):
    frac = coupling_metrics(c0, c1_, N_CROSS)["crossing_fraction"]
    col.metric(f"Crossing: {name}", f"{100 * frac:.2f} %")

# --- 5. Inversion --------------------------------------------------------------------------------
st.header("5 · Inversion: data → noise in a few steps")
st.markdown(
    "A straight flow runs backward as easily as forward: solving $dx/dt = v(x, t)$ from "
    "$t = 1$ to $0$ with a few Euler steps maps each data point to its noise. The straighter the "
    "flow, the closer the recovered noise is to $\\mathcal N(0, I)$ with few steps.")
if not trained:
    st.caption("Train at least the 1-RF (section 2) to invert the data.")
else:
    c1, c2 = st.columns([1, 3])
    with c1:
        k_inv = st.radio("Round", list(trained), format_func=ROUND_NAMES.get,
                         index=len(trained) - 1, key=f"rf_inv_round:{len(trained)}")
        n_inv = st.select_slider("Euler steps (backward)", [1, 2, 4, 8, 16, 32], 2,
                                 key="rf_inv_steps")
    model = trained[k_inv][1].sampler_model.eval()
    x1d = x1_all.to(dev)
    z = fv.solve(model, x1d, "euler", n_inv, t0=1.0, t1=0.0).x
    back = fv.solve(model, z, "euler", n_inv).x
    # the law the inversion should recover: the source (N(0, I) unless the sidebar says else)
    src = "N(0, I)" if gaussian_source else NAMES[cfg.source]
    noise = source_points(cfg.source, len(z), cfg.seed + 5, cfg.upload).to(dev)
    noise2 = source_points(cfg.source, len(z), cfg.seed + 6, cfg.upload).to(dev)
    ed_z = fv.metrics.energy_distance(z, noise)
    floor = fv.metrics.energy_distance(noise2, noise)
    with c1:
        st.metric(f"ED of the noise to {src}", f"{ed_z:.4f}",
                  help=f"Energy distance of the recovered noise to a sample of {src}; for "
                       f"scale, two samples of {src} of this size give {floor:.4f}.")
        rt = float((back - x1d).norm(dim=1).mean())
        st.metric("Round trip error", f"{rt:.4f}",
                  help="Mean ‖Φ(Φ⁻¹(x)) − x‖: invert, then generate back with as many steps.")
        st.caption(f"Two independent samples of {src}, {len(z)} points each: {floor:.4f} "
                   "(the noise floor).")
        if not gaussian_source:
            st.caption("The source is not Gaussian: the histogram and QQ plot still compare "
                       "with N(0, 1), for reference.")
        rows = []
        for k, (_key, s) in trained.items():
            zk = fv.solve(s.sampler_model.eval(), x1d, "euler", n_inv, t0=1.0, t1=0.0).x
            rows.append({"round": ROUND_NAMES[k], f"ED to {src}":
                         fv.metrics.energy_distance(zk, noise)})
        st.dataframe(rows, key="rf-inv-table")
    gz = torch.linspace(-4, 4, 200)
    with c2:
        d1, d2 = st.columns(2)
        with d1:
            chart(hist_pdf_fig(z.cpu().flatten(), gz, torch.exp(-gz**2 / 2) / np.sqrt(2 * np.pi),
                               f"{ROUND_NAMES[k_inv]}, {n_inv} step{'s' * (n_inv > 1)}: noise "
                               "vs N(0, 1)", "z (both coordinates)", bins=40, rng=(-4, 4),
                               height=380, pdf_name="N(0, 1)", legend=False), "rf-inv-hist")
        with d2:
            chart(qq_fig(z.cpu(), "Normal QQ plot of the noise", height=380),
                  "rf-inv-qq")

# --- 6. Minibatch OT -------------------------------------------------------------------------
st.header("6 · The alternative straightener: minibatch-OT pairs")
st.markdown(
    "Instead of retraining on its own pairs, a 1-RF can be trained on pairs re-matched by "
    "optimal transport inside each batch (section 1, right): fewer crossings from the start, "
    "no second round, but the matching is only optimal within a batch. Its curve joins the "
    "quality-vs-NFE chart of section 3.")
if coupling == "ot":
    st.caption("Phase 1 already uses minibatch-OT pairs: switch it to independent to train the "
               "classic 1-RF; both runs are kept and overlaid.")
else:
    k_ot = rf1_key("ot")
    slot = st.empty()
    st_ot = live_training(k_ot, lambda: fv.build_fm(fm_run("ot"), dev, uploaded_points()),
                          meta=rf1_meta("ot"), start="Train the OT 1-RF", preset=fm_run("ot"))
    status_line("1-RF with minibatch-OT pairs (same settings as phase 1)", st_ot, slot=slot)
st.caption(f"Source: {NAMES[cfg.source]} · target: {NAMES[cfg.target]} · device: {dev}")
reproduce_box("reflow", "rf_", {"The 1-RF's config": fm_run(coupling).to_json(),
                                "The 2-RF's training (ReflowConfig)":
                                json.dumps(dataclasses.asdict(rcfg), indent=2, default=str)},
              fm=True)
