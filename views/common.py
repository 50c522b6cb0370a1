"""What every page shares: the sidebar settings, cached data/fields, charts, live training.

Streamlit lives here and in the pages, never in flowviz/. Pages stay thin: read widgets, call
flowviz, render.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st
import torch

import flowviz as fv
from flowviz.data import LABELS, SAMPLERS, PointsError, load_points
from flowviz.experiment import UPLOAD
from views import present, url
from views.present import enlarge, presenting
from views.share import downloads

DATASETS = [*SAMPLERS, UPLOAD]
NAMES = LABELS | {UPLOAD: "Uploaded points (CSV/NPY)"}
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


@dataclass(frozen=True)
class Settings:
    source: str
    target: str
    seed: int
    device: str
    n_data: int  # size of the empirical data set behind the exact field
    h: float  # kernel width of the target mixture (0: the points themselves)
    upload: str  # digest of the uploaded file ('' when none)


def sidebar() -> None:
    """Shared sidebar widgets (rendered once by app.py; keys persist across pages). Each is bound
    to the URL query parameter of its key (?target=checkerboard&seed=3; the two datasets through
    views.url): a link reproduces the view; invalid values in a link are ignored."""
    sb = st.sidebar
    sb.header("Data")
    st.session_state.setdefault("target", "moons")  # the default, without a widget default
    for k in ("target", "source"):
        url.seed(k, DATASETS)
    sb.selectbox("Target p_data", DATASETS, key="target", format_func=NAMES.get)
    sb.selectbox("Source p_init", DATASETS, index=0, key="source", format_func=NAMES.get,
                 help="The closed-form field needs a Gaussian source; other sources can still "
                      "be trained live.")
    url.keep("target", "moons")
    url.keep("source", DATASETS[0])
    if UPLOAD in (st.session_state.get("source"), st.session_state.get("target")):
        f = sb.file_uploader("Points: N rows of x, y (CSV or .npy)", type=["csv", "txt", "npy"],
                             key="upload_file")
        _read_upload(f)
    sb.slider("Data points N", 200, 3000, 1000, 100, key="n_data", bind="query-params",
              help="Size of the empirical data set behind the exact field v*.")
    sb.select_slider("Kernel width h", [0.0, 0.02, 0.05, 0.1, 0.2], 0.05, key="h",
                     bind="query-params",
                     help="Each data point becomes N(y_i, h² I). h = 0 is the raw empirical "
                          "distribution, whose exact flow collapses onto the points at t = 1.")
    sb.header("Run")
    sb.number_input("Seed", 0, 10_000, 0, key="seed", bind="query-params")
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


def settings() -> Settings:
    s = st.session_state
    return Settings(s.get("source", "gaussian"), s.get("target", "moons"), int(s.get("seed", 0)),
                    s.get("device", "auto"), int(s.get("n_data", 1000)), float(s.get("h", 0.05)),
                    s.get("upload_digest", ""))


def page_settings() -> Settings:
    """The sidebar settings for a page; stops the page with a clear message when the chosen
    upload is missing or bad (every page starts here)."""
    cfg = settings()
    if not require_data(cfg):
        st.stop()
    return cfg


def uploaded_points() -> torch.Tensor | None:
    return st.session_state.get("upload_points")


def require_data(cfg: Settings) -> bool:
    """Show a clear message and return False when an upload is chosen but missing or bad."""
    if UPLOAD not in (cfg.source, cfg.target):
        return True
    if err := st.session_state.get("upload_error"):
        st.error(f"The uploaded file was not used: {err}")
    elif uploaded_points() is None:
        st.info("Upload a CSV or .npy file of N rows (x, y) in the sidebar, or pick a dataset.")
    return uploaded_points() is not None


@st.cache_data(show_spinner=False, max_entries=32)
def data_points(name: str, n: int, seed: int, upload: str = "") -> torch.Tensor:
    """The empirical data set (N, 2) of a dataset name (uploads: the validated points)."""
    if name == UPLOAD:
        return uploaded_points()
    return fv.data.sample(name, n, seed)[0]


@st.cache_data(show_spinner=False, max_entries=32)
def source_points(name: str, n: int, seed: int, upload: str = "") -> torch.Tensor:
    if name == UPLOAD:
        pts = uploaded_points()
        return pts[torch.randint(0, len(pts), (n,), generator=torch.Generator().manual_seed(seed))]
    return fv.data.sample(name, n, seed)[0]


@st.cache_resource(show_spinner=False, max_entries=16)
def exact_field(cfg: Settings, path: str = "linear") -> fv.ExactField:
    """The closed-form field v* for the current data (read-only, shared across reruns)."""
    pts = data_points(cfg.target, cfg.n_data, cfg.seed, cfg.upload)
    return fv.ExactField(pts, fv.paths.PATHS[path], h=cfg.h)


def chart(fig, key: str, traj=None, ts=None, arrays: dict | None = None) -> None:
    """A plotly figure with a download menu (PNG, SVG, CSV; NPZ of ``arrays``/``traj``; a GIF
    of ``traj`` (T, N, 2)). The presenter view draws it larger and without the menu."""
    if presenting():
        enlarge(fig)
    st.plotly_chart(fig, key=key, config=PLOTLY_CONFIG)
    if not presenting():
        downloads(fig, key, traj, ts, arrays)


def device(cfg: Settings) -> torch.device:
    try:
        return fv.pick_device(cfg.device)
    except ValueError as e:
        st.warning(f"{e}; using the CPU.")
        return torch.device("cpu")


def training_active(key: str) -> bool:
    """Whether the live run ``key`` is training now (neither paused nor finished)."""
    return bool(st.session_state.get(f"running:{key}"))


def live_training(key: str, build: Callable[[], fv.TrainState], chunk: int = 100,
                  every: float = 0.3, meta: dict | None = None,
                  loss_keys=("loss",),
                  monitor: Callable[[fv.TrainState], None] | None = None,
                  advance: Callable | None = None, progress: Callable | None = None,
                  start: str = "Train live") -> fv.TrainState | None:
    """Train / Pause / Reset controls and a fragment that trains ``chunk`` steps per tick.

    States live in ``st.session_state["runs"][key]``: keying by the run's config means coming
    back to a page, or switching back to an earlier setting, shows the finished run instantly.
    ``meta`` (a label, the data it was trained on, ...) is kept on the state for tables.
    ``loss_keys``: the logged parts drawn in the loss chart (an objective's logs names).
    ``monitor(state)``: draws more live charts (e.g. stability monitors) under the loss chart.
    Phases that are not training (e.g. reflow's pair generation) pass ``advance(state, chunk)``
    (default fv.train_steps), ``progress(state) -> (fraction, text)`` and the ``start`` label.
    Returns the state for ``key`` (None before the first click).
    """
    runs = st.session_state.setdefault("runs", {})
    flag = f"running:{key}"
    c1, c2, c3 = st.columns([1, 1, 1])
    state = runs.get(key)
    label = "Resume" if state is not None and not state.done else start
    if c1.button(label, key=f"train:{key}", type="primary",
                 disabled=state is not None and state.done):
        if state is None:
            runs[key] = state = build()
            state.meta.update(meta or {})
        st.session_state[flag] = True
    if c2.button("Pause", key=f"pause:{key}", disabled=not st.session_state.get(flag)):
        st.session_state[flag] = False
    if c3.button("Reset", key=f"reset:{key}", disabled=state is None):
        runs.pop(key, None)
        st.session_state[flag] = False
        state = None

    running = bool(st.session_state.get(flag)) and state is not None and not state.done

    @st.fragment(run_every=every if running else None)
    def tick():
        s = runs.get(key)
        if s is None:
            st.caption(f"Not started yet: press **{start}**.")
            return
        if st.session_state.get(flag) and not s.done:
            (advance or fv.train_steps)(s, chunk)
        frac, text = progress(s) if progress else (
            min(1.0, s.step / s.cfg.steps),
            f"step {s.step} / {s.cfg.steps} · {s.seconds:.1f} s of training")
        st.progress(frac, text=text)
        if s.status == "nan":
            st.error(s.message)
        if s.history:
            chart(fv.viz.loss_fig(s.history, loss_keys), key=f"loss:{key}")
            if monitor is not None:
                monitor(s)
        if s.done and st.session_state.get(flag):
            st.session_state[flag] = False
            st.rerun()  # whole page: draw the results of the finished run

    tick()
    return runs.get(key)
