"""The ReFlow page's "Go deeper" sections, each computed only when chosen: the 2-RF's improved
training choices (Lee et al. 2024), why rectified pairs hardly cross (article §3.1), inversion
data -> noise, minibatch OT as the other straightener, and every run of the session side by side.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

import flowviz as fv
from flowviz.analysis import NFES, coupling_metrics
from flowviz.data import SAMPLERS
from flowviz.methods.reflow import (
    LOSSES,
    T_DISTS,
    huber_c,
    time_pdf,
    time_sampler,
)
from flowviz.viz.reflow import hist_pdf_fig, qq_fig
from flowviz.viz.style import format_distance
from views.cache import cached, exact_nfe_curve, noise_floor, source_points
from views.charts import chart
from views.reflow_crossing import non_crossing
from views.reflow_pipeline import (
    CHOICES,
    LOSS_LABELS,
    N_CROSS,
    N_EVAL,
    ROUND,
    T_LABELS,
    Reflow,
    choices,
    status,
)
from views.state import NAMES, uploaded_points
from views.training import live_training

SECTIONS = ["Improved 2-RF training", "Why pairs hardly cross", "Inversion: data → noise",
            "Minibatch OT", "Every run, side by side"]
LIM, N_LINES = 4.5, 150
OT_LABEL = "1-RF, minibatch OT"


def go_deeper(section: str, page: Reflow) -> None:
    {SECTIONS[0]: improved_training, SECTIONS[1]: non_crossing, SECTIONS[2]: inversion,
     SECTIONS[3]: minibatch_ot, SECTIONS[4]: every_run}[section](page)


def nfe_curves(page: Reflow, evals: dict, floor: float) -> dict:
    """label -> (NFE, energy distance): the exact field v* (Gaussian source) and each run."""
    curves = {}
    if page.cfg.source == "gaussian":
        curves["exact v*"] = exact_nfe_curve(page.cfg)
    return curves | {label: r["nfe"] for label, r in evals.items()}


def improved_training(page: Reflow) -> None:
    st.markdown("Lee, Lin & Fanti 2024 show one reflow is enough when that round is trained "
                "well. Each choice changes one thing in the 2-RF (and 3-RF); a changed choice "
                "is a new run: press **Train 2-RF** above.")
    kept = choices()
    c1, c2, c3 = st.columns([1, 1, 1.2])
    with c1:
        t_dist = st.selectbox("Timestep distribution", list(T_DISTS), key="rf_tdist",
                              index=list(T_DISTS).index(kept["rf_tdist"]),
                              format_func=T_LABELS.get)
        a = st.slider("U-shape a", 0.0, 8.0, kept["rf_a"], 0.5, key="rf_a",
                      disabled=t_dist != "u_shaped")
        ln_std = st.slider("Logit-normal scale s", 0.3, 2.0, kept["rf_lnstd"], 0.1,
                           key="rf_lnstd", disabled=t_dist != "logit_normal")
        st.caption("2-RF's error is largest near t = 0 and t = 1, so the U-shape "
                   "$p(t) \\propto e^{at} + e^{a(1-t)}$ ($a = 4$ in the paper) samples more "
                   "there; logit-normal (SD3) does the opposite.")
    with c2:
        loss = st.selectbox("Loss", list(LOSSES), index=list(LOSSES).index(kept["rf_loss"]),
                            key="rf_loss", format_func=LOSS_LABELS.get)
        st.select_slider("Pseudo-Huber c", [0.0, 0.001, 0.01, 0.1, 1.0], kept["rf_c"],
                         key="rf_c", disabled=loss != "pseudo_huber",
                         format_func=lambda v: f"paper: {huber_c(2):.5f}" if v == 0 else f"{v:g}")
        st.caption("$\\sqrt{\\|r\\|^2 + c^2} - c$: quadratic below $c$, linear above, so a "
                   "few bad pairs pull less (LPIPS-Huber on images).")
        st.slider("Real-data mixing p", 0.0, 1.0, kept["rf_preal"], 0.05, key="rf_preal",
                  help="Probability that a training pair is a data point with the noise the "
                       "1-RF maps it back to, instead of a generated pair.")
    with c3:
        st.radio("Initialise the 2-RF from", ["previous", "scratch"], horizontal=True,
                 index=["previous", "scratch"].index(kept["rf_init"]), key="rf_init",
                 format_func={"previous": "the 1-RF (paper)", "scratch": "scratch"}.get,
                 help="From the 1-RF's weights the 2-RF only has to unbend the field.")
        sampler = time_sampler(t_dist, a, std=ln_std)
        ts = sampler(20_000, torch.zeros(1), torch.Generator().manual_seed(0))
        grid_t = torch.linspace(0.002, 0.998, 300)
        chart(hist_pdf_fig(ts, grid_t, time_pdf(t_dist, grid_t, a, 0.0, ln_std),
                           f"{T_LABELS[t_dist]} timesteps: 20 000 draws vs p(t)", "t", bins=25,
                           rng=(0.0, 1.0), height=280, pdf_name="p(t)", legend=False),
              "rf-tdist")
    if any(kept[k] != v for k, v in CHOICES.items()):
        st.caption("The page's preset was trained with the paper's choices (U-shaped t, "
                   "squared error, p = 0, from the 1-RF).")


@cached(show_spinner=False)
def source_floor(source: str, n: int) -> float:
    """The sampling noise of an energy distance between two n-point sets of the source."""
    return fv.metrics.ed_noise_floor(lambda k, g: fv.data.sample(
        source, k, int(torch.randint(1 << 30, (1,), generator=g)))[0], n)


def inversion(page: Reflow) -> None:
    st.markdown("A straight flow runs backward as easily as forward: solving $dx/dt = v(x, t)$ "
                "from $t = 1$ to $0$ in a few Euler steps maps each data point to its noise. "
                "The straighter the flow, the closer that noise is to the source with few steps.")
    rounds = page.trained()
    if not rounds:
        st.caption("Train at least the 1-RF above to invert the data.")
        return
    cfg, x1 = page.cfg, page.x1.to(page.dev)
    c1, c2, c3 = st.columns([1, 1.5, 1.5])
    with c1:
        k = st.radio("Round", list(rounds), format_func=ROUND.get, index=len(rounds) - 1,
                     key=f"rf_inv_round:{len(rounds)}", horizontal=True)
        steps = st.select_slider("Euler steps (backward)", [1, 2, 4, 8, 16, 32], 2,
                                 key="rf_inv_steps")
    model = rounds[k][1].sampler_model.eval()
    z = fv.solve(model, x1, "euler", steps, t0=1.0, t1=0.0).x
    back = fv.solve(model, z, "euler", steps).x
    src = "N(0, I)" if cfg.source == "gaussian" else NAMES[cfg.source]
    noise = source_points(cfg.source, len(z), cfg.seed + 5, cfg.upload).to(page.dev)
    floor = source_floor(cfg.source, len(z)) if cfg.source in SAMPLERS else None
    with c1:
        st.metric(f"ED of the noise to {src}", format_distance(
            fv.metrics.energy_distance(z, noise), floor), help="Energy distance of the "
            f"recovered noise to a sample of {src}; two samples of {src} of {len(z)} points "
            f"differ by about {floor or 0:.4f}.")
        st.metric("Round trip error", f"{float((back - x1).norm(dim=1).mean()):.4f}",
                  help="Mean ‖Φ(Φ⁻¹(x)) − x‖: invert, then generate back with as many steps.")
    gz = torch.linspace(-4, 4, 200)
    with c2:
        chart(hist_pdf_fig(z.cpu().flatten(), gz, torch.exp(-gz**2 / 2) / np.sqrt(2 * np.pi),
                           f"{ROUND[k]}, {steps} step{'s' * (steps > 1)}: noise vs N(0, 1)",
                           "z (both coordinates)", bins=40, rng=(-4, 4), height=360,
                           pdf_name="N(0, 1)", legend=False), "rf-inv-hist")
    with c3:
        chart(qq_fig(z.cpu(), "Normal QQ plot of the noise", height=360), "rf-inv-qq")
    if cfg.source != "gaussian":
        st.caption("The source is not Gaussian: the histogram and QQ plot still compare with "
                   "N(0, 1), for reference.")


def minibatch_ot(page: Reflow) -> None:
    st.markdown("Instead of a second round, a 1-RF can be trained on pairs re-matched by "
                "optimal transport inside each batch: fewer crossings from the start and no "
                "second round, but the matching is only optimal within a batch.")
    key = page.rf1_key("ot")
    slot = st.empty()
    state = live_training(key, lambda: fv.build_fm(page.fm_run("ot"), page.dev,
                                                   uploaded_points()),
                          meta=page.rf1_meta("ot"), start="Train the OT 1-RF",
                          preset=page.fm_run("ot"))
    status(slot, "A 1-RF on minibatch-OT pairs (phase 1's settings)", state)
    c1, c2 = st.columns(2)
    for col, (name, pairs) in zip((c1, c2), (("Independent", page.independent), (
            "Minibatch-OT", fv.data.minibatch_ot(*page.independent))), strict=True):
        frac = coupling_metrics(*pairs, N_CROSS)["crossing_fraction"]
        with col:
            chart(fv.viz.pair_lines_fig(*pairs, f"{name} pairs: {100 * frac:.1f} % of lines "
                                        "cross", N_LINES, LIM, 380), f"rf-ot-{name}")
    if state is None or state.step == 0:
        return
    floor = noise_floor(page.cfg, N_EVAL)
    evals = {ROUND[k]: page.evaluate(key_, s) for k, (key_, s) in page.trained().items()}
    evals[OT_LABEL] = page.evaluate(key, state)
    chart(fv.viz.quality_vs_nfe_fig(nfe_curves(page, evals, floor), title="Quality vs NFE "
                                    "(Euler): OT pairs or a second round", floor=floor),
          "rf-ot-nfe")


def every_run(page: Reflow) -> None:
    """Every run of this session on this data: quality vs NFE and a table of their metrics."""
    runs = {key: s for key, s in st.session_state.get("runs", {}).items()
            if key.startswith(("rf1:", "rf2:", "rf3:")) and s.meta.get("data") == page.data_key
            and s.step > 0}
    if not runs:
        st.caption("The runs appear here as soon as they have trained a little.")
        return
    labels = {key: s.meta["label"] for key, s in runs.items()}
    shown = st.multiselect("Runs shown (every run of this session on this data is kept)",
                           list(runs), default=list(runs), format_func=labels.get,
                           key=f"rf_overlay:{hash(tuple(runs))}")  # a new run: all shown
    floor = noise_floor(page.cfg, N_EVAL)
    evals = {labels[key]: page.evaluate(key, runs[key]) for key in shown}
    chart(fv.viz.quality_vs_nfe_fig(nfe_curves(page, evals, floor), title="Quality vs NFE "
                                    "(Euler), every run", height=460, floor=floor), "rf-runs")
    rows = []
    for key in shown:
        s, r = runs[key], evals[labels[key]]
        q = dict(zip(*r["nfe"], strict=True))
        pairs = st.session_state["runs"].get(s.meta.get("pairs_key"))
        rows.append({"run": labels[key], "trained": "done" if s.done else
                     f"step {s.step} / {s.cfg.steps}",
                     **{f"ED @{n}": format_distance(q[n], floor) for n in (1, 2, 4, 128)},
                     "straightness": r["paths"]["straightness"],
                     "own crossings %": 100 * r["paths"]["crossing_fraction"],
                     "train-pair crossings %": 100 * r["train"]["crossing_fraction"],
                     "E‖x1−x0‖²": r["paths"]["transport_cost"], "train s": s.seconds,
                     "pairs s": pairs.seconds if pairs is not None else 0.0})
    st.dataframe(rows, key="rf-table", hide_index=True, column_config={
        "run": st.column_config.TextColumn(width="medium"),
        **{c: st.column_config.NumberColumn(format="%.4f") for c in ("straightness",
                                                                      "E‖x1−x0‖²")},
        **{c: st.column_config.NumberColumn(format="%.1f") for c in (
            "own crossings %", "train-pair crossings %", "train s", "pairs s")}})
    st.caption(f"Energy distance (ED) of {N_EVAL} Euler samples to the data at NFE "
               f"{', '.join(map(str, NFES))}; '≤ noise' when below the distance between two "
               f"samples of the data ({floor:.4f}). Path metrics from RK4 trajectories.")
