"""Flow theatre, second half: one noise point followed under every method, and the exports
(frames CSV, GIF, the command that renders the same animation headless)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from flowviz import theatre as th
from flowviz.viz.theatre import particle_fig, theatre_gif
from views.present import enlarge, presenting


@st.cache_resource(show_spinner="Loading the preset models…", max_entries=4)
def cast(keys: tuple) -> dict:
    """The networks and exact fields behind ``keys`` (read-only, shared by every session)."""
    return th.preset_cast(keys)


@st.cache_data(show_spinner=False, max_entries=16)
def reference(k: int, n: int, seed: int):
    """The exact field's flight of the same noise: every endpoint error is measured to it."""
    return th.from_presets(("exact",), k, n, seed)["exact"]


def follow_particle(keys: tuple, flights: dict, k: int, n: int, seed: int) -> None:
    st.subheader("Follow one particle")
    st.caption("Its path under every method (dots: the states its sampler computed), where it "
               "is at time t, its velocity there (arrow), the chord to its endpoint (dotted) "
               "and the jump Shortcut (size d = 1/k) and MeanFlow (to r = 1) would make from "
               "there (dashed, ×).")
    c1, c2, c3 = st.columns([1, 2, 1.4])
    i = c1.number_input("Noise point", 0, n - 1, 0, key=f"th_point_{n}",
                        help="Click a point in the theatre above to see its number.")
    t = c2.slider("Time t", 0.0, 1.0, 0.5, 0.05, key="th_t")
    shade = c3.toggle("Shade the exact density p_t", key="th_density")
    ref = reference(k, n, seed)
    models = cast(keys)
    parts = th.follow(models, flights, int(i), t, k, reference=ref)
    data, h = th.preset_data()
    dens = th.density(th.fields(data, h)["exact"], t, 3.0) if shade else None
    fig = particle_fig(parts, th.METHODS, t, data=data, density=dens, height=460)
    if presenting():
        enlarge(fig)
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(fig, key="th-particle", config={"displaylogo": False})
    rows = [{"method": th.METHODS[key], "path length": p.length,
             "endpoint error vs exact": p.error}
            for key, p in parts.items()]
    right.dataframe(pd.DataFrame(rows).style.format(precision=3), hide_index=True)
    right.caption("Path length: the sum of the straight moves between the states the sampler "
                  "computed. Endpoint error: the distance from its endpoint to the exact "
                  "field's endpoint for the same noise (RK4, 60 steps). A straight path is as "
                  "long as its chord; a curved one costs Euler steps.")


def exports(keys: tuple, flights: dict, k: int, n: int, seed: int) -> None:
    """Frames as CSV, the animation as a GIF, and the command line that renders both headless."""
    if presenting():
        return
    times = th.frame_times(flights)
    names = " ".join(keys)
    with st.expander("Download and reproduce this: frames CSV, GIF, command line",
                     icon=":material/replay:"):
        c1, c2 = st.columns(2)
        c1.download_button("Frames (CSV)", lambda: th.frames_csv(flights, times),
                           "theatre_frames.csv", "text/csv", on_click="ignore",
                           help="method, t, point, x, y, visited (1: a state the sampler "
                                "computed, 0: drawn between two)")
        c2.download_button("Animation (GIF)",
                           lambda: theatre_gif(flights, times, th.preset_data()[0]),
                           "theatre.gif", "image/gif", on_click="ignore",
                           help="Every panel, one frame per time of the slider")
        st.markdown("**The same animation, headless** (an HTML page that plays it, the GIF and "
                    "the frames CSV into `theatre/`):")
        st.code(f"python -m flowviz theatre --methods {names} --k {k} --n {n} --seed {seed} "
                "--out theatre", language="bash")
