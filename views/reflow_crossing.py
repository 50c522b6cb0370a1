"""Why rectified pairs hardly cross (article §3.1), a "Go deeper" section of the ReFlow page:
pick two pairs of a coupling and see where (and when) their lines meet, then count crossings
over all pairs of lines for independent pairs, the exact field's pairs and each round's pairs."""

from __future__ import annotations

import streamlit as st

import flowviz as fv
from flowviz.analysis import coupling_metrics
from flowviz.methods.reflow import segment_crossing
from flowviz.reproduce import exact_coupling
from flowviz.viz.reflow import crossing_fig
from views.cache import cached, exact_field, source_points
from views.charts import chart
from views.reflow_pipeline import N_CROSS, ROUND, Reflow
from views.state import Settings

LIM, N_LINES = 4.5, 150


@cached(show_spinner=False, max_entries=16)
def exact_pairs(cfg: Settings, n: int = N_CROSS):
    """(x0, Φ*(x0)): the coupling of the exact 1-RF field v* (RK4, 8 steps), no training."""
    return exact_coupling(exact_field(cfg), source_points("gaussian", n, cfg.seed + 1))


def couplings(page: Reflow) -> dict:
    """name -> (x0, x1): independent pairs, the exact field's pairs, each round's own pairs."""
    out = {"independent pairs (the 1-RF's)": page.independent}
    if page.cfg.source == "gaussian":
        out["exact 1-RF's pairs (no training)"] = exact_pairs(page.cfg, len(page.independent[0]))
    for k, (_key, s) in page.trained().items():
        if k > 1 and s.meta.get("pairs") is not None:
            out[f"{ROUND[k - 1]}'s pairs (the {ROUND[k]}'s)"] = page.training_coupling(s)
    return out


def non_crossing(page: Reflow) -> None:
    st.markdown(
        "Two paths of an ODE never meet at the same time (one velocity per point), but their "
        "straight pair lines may cross at *different* times. For the lines of pairs A and B "
        "to be at one place at one time, $x_1^A - x_1^B$ must point exactly along "
        "$x_0^B - x_0^A$ (article §3.1): for pairs made by a flow, a coincidence.")
    pairs = couplings(page)
    n_show = min(N_LINES, len(page.independent[0]))
    c1, c2 = st.columns([1, 2])
    with c1:
        which = st.radio("Coupling", list(pairs), key="rf_cross_coupling")
        a0, a1 = pairs[which]
        i = st.slider("Pair A", 0, n_show - 1, 0, key="rf_pair_a")

        def next_crossing():
            """Pair B := the next pair whose line crosses A's (if there is one)."""
            hit = [int(k) for k in fv.metrics.segments_cross(
                a0[i], a1[i], a0[:n_show], a1[:n_show]).nonzero().flatten()]
            cur = st.session_state.get("rf_pair_b", 1)
            if nxt := [k for k in hit if k > cur] or hit:
                st.session_state["rf_pair_b"] = nxt[0]

        j = st.slider("Pair B", 0, n_show - 1, 1, key="rf_pair_b")
        st.button("Next B whose line crosses A's", on_click=next_crossing, key="rf_find_cross")
        cr = segment_crossing(a0[i], a1[i], a0[j], a1[j]) if i != j else \
            {"crosses": False, "angle": float("nan"), "t_a": float("nan")}
        if i == j:
            st.warning("Pick two different pairs.")
        elif cr["crosses"]:
            st.markdown(f"**The lines cross**, A at t = {cr['t_a']:.2f} and B at t = "
                        f"{cr['t_b']:.2f}: at different times, so no two paths collide.")
        else:
            st.markdown("**The lines do not cross.**")
        st.metric("Angle of x1ᴬ − x1ᴮ to x0ᴮ − x0ᴬ", f"{cr['angle']:.1f}°",
                  help="0° is needed for the two lines to be at one place at one time.")
    with c2:
        chart(crossing_fig(a0, a1, i, j, cr, f"Pair lines: {which}", n_show, LIM, 440),
              "rf-crossing")
    n = len(page.independent[0])
    st.markdown(f"**Crossing pairs of lines**, over all {n * (n - 1) // 2} pairs of {n} lines:")
    for col, (name, (x0, x1)) in zip(st.columns(len(pairs)), pairs.items(), strict=True):
        col.metric(name, f"{100 * coupling_metrics(x0, x1, N_CROSS)['crossing_fraction']:.1f} %")
