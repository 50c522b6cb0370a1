"""ReFlow: k-rectified flow, live (article §3, §3.1; Liu et al. 2022; Lee, Lin & Fanti 2024).

The lesson: a 1-RF trained on independent pairs bends; solving its own ODE gives pairs
(x0, Φ(x0)) whose lines hardly cross; a 2-RF trained on them is nearly straight, so one Euler
step lands close to the data. The improved-training choices, the non-crossing argument,
inversion, minibatch OT and the table of every run are under "Go deeper" (views.reflow_deeper).
"""

import dataclasses
import json

import streamlit as st

import flowviz as fv
from flowviz.viz.style import format_distance, method_color
from views.cache import noise_floor
from views.charts import chart
from views.reflow_deeper import SECTIONS, go_deeper, nfe_curves
from views.reflow_pipeline import (
    N_EVAL,
    ROUND,
    Reflow,
    phase_1rf,
    phase_pairs,
    phase_round,
    settings_1rf,
    settings_pairs,
    settings_round,
)
from views.reproduce import reproduce_box
from views.state import NAMES, page_settings
from views.teach import ask, deeper, verdict, waiting

LIM = 4.5
ANSWERS = ["Much closer to the data", "About as close", "Further from the data"]


def intro() -> None:
    st.title("ReFlow: train on your own pairs, and the flow straightens")
    st.caption("Article §3 and §3.1 · Liu et al. 2022 (rectified flow, reflow) · Lee, Lin & "
               "Fanti 2024 (improving the training of rectified flows)")
    st.markdown(
        "A rectified flow regresses $v(x_t, t)$ on $x_1 - x_0$ along the straight line of each "
        "pair. The **1-RF** is trained on independent pairs: their lines cross, the field "
        "averages conflicting directions and its paths bend. **Reflow** (article eq. 6) solves "
        "the 1-RF's own ODE from fresh noise and trains a **2-RF** on those pairs "
        "$(x_0, \\Phi_1(x_0))$ — no new data, only a new way of pairing it.")


def pipeline(page: Reflow) -> None:
    """The phases, one tab each (a fourth for the optional 3-RF), under a line of statuses."""
    st.subheader("Run it: three phases, one button each")
    summary = st.empty()  # filled once the phases have loaded their presets (or not)
    t1, t2, t3, t4 = st.tabs(["1 · Train the 1-RF", "2 · Its pairs", "3 · Train the 2-RF",
                              "Optional: a 3-RF"])
    with t1:
        page.run1 = settings_1rf(page.cfg)
        k1, s1 = phase_1rf(page)
    with t2:
        page.pairs_cfg = settings_pairs(len(page.x1))
        kp, sp = phase_pairs(page, 1, k1, s1)
    with t3:
        page.round_cfg = settings_round(page.pairs_cfg, page.run1.batch, page.cfg.seed)
        k2, s2 = phase_round(page, 2, kp, sp, s1)
    page.rounds = {1: (k1, s1), 2: (k2, s2)}
    with t4:
        st.caption("One more round of the same idea: pairs from the 2-RF's ODE, a 3-RF "
                   "trained on them with the 2-RF's settings.")
        d1, d2 = st.columns(2)
        with d1:
            kp3, sp3 = phase_pairs(page, 2, k2, s2)
        with d2:
            page.rounds[3] = phase_round(page, 3, kp3, sp3, s2)
    if s1 is None:
        summary.info("**Nothing is trained yet.** Press **Train 1-RF**, then the next tab's "
                     "button when a phase is done. Phases pause and resume; a phase built on "
                     "one you retrain says it is stale.")
    else:
        lines = list(page.statuses.items())  # the 3-RF's once it is started
        lines = lines[:3] + [(n, s) for n, s in lines[3:] if not s.startswith(("not", "wait"))]
        summary.markdown("Status: " + " · ".join(f"{name} {s}" for name, s in lines))


def measured_answer(ed1: float, ed2: float, floor: float) -> str:
    """The 2-RF's one step vs the 1-RF's, as one of ANSWERS (noise-level gaps: 'as close')."""
    if ed2 < 0.5 * ed1 and ed1 > floor:
        return ANSWERS[0]
    if ed2 > 1.25 * ed1 and ed2 > floor:
        return ANSWERS[2]
    return ANSWERS[1]


def rounds_compared(page: Reflow, rounds: dict, floor: float) -> dict:
    """Each round's paths with its straightness and one-step distance, beside quality vs
    NFE. Returns the rounds' evaluations."""
    evals = {k: page.evaluate(key, s) for k, (key, s) in rounds.items()}
    widths = [1] * len(rounds) + [1.5]
    cols = st.columns(widths if len(rounds) <= 2 else [1] * len(rounds))
    for col, (k, r) in zip(cols, evals.items(), strict=False):
        with col:
            paths = r["paths"]
            fig = fv.viz.trajectories_fig(paths["traj"], f"{ROUND[k]}: paths (RK4)", lim=LIM,
                                          height=360, color=method_color(ROUND[k]))
            fig.update_layout(showlegend=False)  # the caption under the row says it
            chart(fig, f"rf-traj-{k}", traj=paths["traj"], ts=paths["ts"])
            st.markdown(f"Straightness **{paths['straightness']:.3f}** · one step: ED "
                        f"**{format_distance(r['nfe'][1][0], floor, 3)}**",
                        help="Straightness S = ∫ E‖(x1 − x0) − dx_t/dt‖² dt (Liu et al. "
                             "2022), 0 for straight paths; ED: energy distance of one-Euler-"
                             "step samples to the data.")
    curves = nfe_curves(page, {ROUND[k]: r for k, r in evals.items()}, floor)
    fig = fv.viz.quality_vs_nfe_fig(curves, title="Quality vs NFE (Euler)", height=420,
                                    floor=floor)
    fig.update_layout(legend=dict(orientation="h", y=-0.25), margin=dict(b=100))
    with cols[-1] if len(rounds) <= 2 else st.container():
        chart(fig, "rf-nfe")
        st.caption(f"Energy distance of {N_EVAL} samples to the data, lower is better; the "
                   "grey band is the noise of two samples of the data itself.")
    st.caption("Paths from grey noise x0 to red samples x1, each with its straight chord "
               "(dotted): the straighter the path, the better one Euler step follows it.")
    return evals


def one_step_question(page: Reflow) -> None:
    st.subheader("What does one round of reflow buy?")
    choice = ask("rf-one-step", "The 2-RF sees no new data: it learns the 1-RF's own pairs. "
                 "Sampled with **one** Euler step, how close do its samples come to the data, "
                 "compared with one step of the 1-RF?", ANSWERS, "§3")
    if choice is None:
        waiting()
        return
    rounds = page.trained()
    if not {1, 2} <= set(rounds):
        waiting("Train the 1-RF, its pairs and the 2-RF above: the answer is measured on "
                "them.")
        return
    floor = noise_floor(page.cfg, N_EVAL)
    r = rounds_compared(page, rounds, floor)
    ed1, ed2 = r[1]["nfe"][1][0], r[2]["nfe"][1][0]
    s1, s2 = (r[k]["paths"]["straightness"] for k in (1, 2))
    verdict("rf-one-step", measured_answer(ed1, ed2, floor),
            f"One step, energy distance to the data: 1-RF {format_distance(ed1, floor)}, "
            f"2-RF {format_distance(ed2, floor)}. The 1-RF's pairs cross, so its paths bend "
            "and one straight step misses; the flow's own pairs hardly cross, so the 2-RF's "
            f"paths are nearly straight (S {s1:.3f} → {s2:.3f}) and one step follows them.")


cfg = page_settings()
page = Reflow(cfg)
intro()
pipeline(page)
one_step_question(page)
if (section := deeper("rf_deeper", SECTIONS)) is not None:
    go_deeper(section, page)
st.caption(f"Source: {NAMES[cfg.source]} · target: {NAMES[cfg.target]} · device: {page.dev}")
reproduce_box("reflow", "rf_", {"The 1-RF's config": page.run1.to_json(),
                                "The 2-RF's training (ReflowConfig)": json.dumps(
                                    dataclasses.asdict(page.round_cfg), indent=2, default=str)},
              fm=True)
