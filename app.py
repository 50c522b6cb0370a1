"""flowviz: `streamlit run app.py`. Router only: the pages and the shared sidebar."""

import os
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning: on a busy 2-core laptop or a shared classroom
# server, spinning threads made live training 20-50x slower (benchmarks/RESULTS.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st  # noqa: E402

from views.sidebar import sidebar  # noqa: E402
from views.training import prepare_server  # noqa: E402

st.set_page_config(page_title="flowviz · fast generation with flow matching",
                   page_icon=str(Path(__file__).parent / "assets" / "favicon.png"), layout="wide")

PAGES = [
    st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/theatre.py", title="Flow theatre", icon=":material/theaters:",
            url_path="theatre"),
    st.Page("views/straight_pairs.py", title="Straight pairs, curved flow",
            icon=":material/timeline:", url_path="straight_pairs"),
    st.Page("views/diffusion_vs_fm.py", title="Diffusion PF-ODE vs flow matching",
            icon=":material/blur_on:", url_path="diffusion_vs_fm"),
    st.Page("views/reflow.py", title="ReFlow: straightening", icon=":material/straighten:",
            url_path="reflow"),
    st.Page("views/instaflow.py", title="InstaFlow: reflow + distill", icon=":material/bolt:",
            url_path="instaflow"),
    st.Page("views/shortcut.py", title="Shortcut models", icon=":material/fast_forward:",
            url_path="shortcut"),
    st.Page("views/meanflow.py", title="MeanFlow", icon=":material/functions:",
            url_path="meanflow"),
    st.Page("views/scoreboard.py", title="Scoreboard: all methods", icon=":material/leaderboard:",
            url_path="scoreboard"),
    st.Page("views/scaling.py", title="Scaling: images", icon=":material/photo_library:",
            url_path="scaling"),
]

prepare_server()
page = st.navigation(PAGES)
sidebar(page.url_path)
page.run()
