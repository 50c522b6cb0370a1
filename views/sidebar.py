"""The shared sidebar: data, seed, device and the presenter view (drawn once by app.py; every
widget keeps its value across pages and is bound to the URL)."""

from __future__ import annotations

import hashlib

import streamlit as st

import flowviz as fv
from flowviz.data import PointsError, load_points
from flowviz.experiment import UPLOAD
from views import present, url
from views.state import DATASETS, NAMES

# Pages whose data is not the sidebar's: the 2-D data controls are shown disabled, with why.
OWN_DATA = {
    "instaflow": "InstaFlow needs a target made of named parts (its \"prompts\"): choose it on "
                 "the page. Seed and h apply; N sets the teacher's data (at least 2000).",
    "theatre": "The theatre plays the presets, trained on the moons data: only the seed (which "
               "noise) applies.",
    "scaling": "This page works on images (scikit-learn's digits), not on 2-D points: only the "
               "seed and the device apply.",
}
DATA_KEYS = {"instaflow": ("target", "source"),
             "theatre": ("target", "source", "n_data", "h", "upload_file"),
             "scaling": ("target", "source", "n_data", "h", "upload_file")}


def sidebar(page: str = "") -> None:
    """Shared sidebar widgets (rendered once by app.py; keys persist across pages). Each is bound
    to the URL query parameter of its key (?target=checkerboard&seed=3; the two datasets through
    views.url): a link reproduces the view; invalid values in a link are ignored. On a page with
    its own data (``page``: its url path) the controls it ignores are disabled, with one line of
    why."""
    sb = st.sidebar
    off = set(DATA_KEYS.get(page, ()))
    sb.header("Data")
    if page in OWN_DATA:
        sb.info(OWN_DATA[page], icon=":material/info:")
    st.session_state.setdefault("target", "moons")  # the default, without a widget default
    for k in ("target", "source"):
        url.seed(k, DATASETS)
    sb.selectbox("Target p_data", DATASETS, key="target", format_func=NAMES.get,
                 disabled="target" in off)
    sb.selectbox("Source p_init", DATASETS, index=0, key="source", format_func=NAMES.get,
                 disabled="source" in off,
                 help="The closed-form field needs a Gaussian source; other sources can still "
                      "be trained live.")
    url.keep("target", "moons")
    url.keep("source", DATASETS[0])
    if UPLOAD in (st.session_state.get("source"), st.session_state.get("target")) \
            and "upload_file" not in off:
        f = sb.file_uploader("Points: N rows of x, y (CSV or .npy)", type=["csv", "txt", "npy"],
                             key="upload_file")
        _read_upload(f)
    sb.slider("Data points N", 200, 3000, 1000, 100, key="n_data", bind="query-params",
              disabled="n_data" in off,
              help="Size of the empirical data set behind the exact field v*.")
    sb.select_slider("Kernel width h", [0.0, 0.02, 0.05, 0.1, 0.2], 0.05, key="h",
                     bind="query-params", disabled="h" in off,
                     help="Each data point becomes N(y_i, h² I). h = 0 is the raw empirical "
                          "distribution, whose exact flow collapses onto the points at t = 1.")
    sb.header("Run")
    sb.number_input("Seed", 0, 10_000, 0, key="seed", bind=url.number_bind("seed"))
    sb.selectbox("Device", ["auto", *fv.device.available_devices()], key="device",
                 bind="query-params",
                 help="auto picks CUDA, then Apple MPS, then CPU.")
    present.toggle()


def _read_upload(f) -> None:
    if f is None:
        return
    raw = f.getvalue()
    digest = hashlib.sha1(raw).hexdigest()[:12]
    if st.session_state.get("upload_digest") == digest:
        return
    try:
        st.session_state["upload_points"] = load_points(raw, f.name)
        st.session_state["upload_digest"] = digest
        st.session_state.pop("upload_error", None)
    except PointsError as e:
        st.session_state["upload_error"] = str(e)
        st.session_state.pop("upload_points", None)
        st.session_state.pop("upload_digest", None)
