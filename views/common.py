"""What every page shares: the sidebar settings, cached data/fields, charts, live training.

Streamlit lives here and in the pages, never in flowviz/. Pages stay thin: read widgets, call
flowviz, render.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st
import torch

import flowviz as fv
from flowviz import checkpoint, config, presets, store
from flowviz.data import LABELS, SAMPLERS, PointsError, load_points
from flowviz.experiment import UPLOAD, phases
from flowviz.serve import MAX_RUNS, MAX_TRAININGS, TORCH_THREADS, TrainingSlots, evict_oldest
from flowviz.viz.reflow import as_svg
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


def run_key(kind: str, *parts) -> str:
    """A run's key in session_state["runs"]: the same in every process (it also names the run's
    evaluations on disk, see Results)."""
    return f"{kind}:{store.digest(*parts)}"


def cached(show_spinner: bool | str = False, max_entries: int = 16):
    """st.cache_data over flowviz.store.stored: in memory for this server, on disk across
    servers (assets/evals ships the presets' defaults)."""
    def deco(fn):
        return st.cache_data(show_spinner=show_spinner, max_entries=max_entries)(store.stored(fn))
    return deco


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


@cached("Measuring the exact field at NFE 1…128…")
def exact_nfe_curve(cfg: Settings, n: int = 2000) -> tuple[list[int], list[float]]:
    """Energy distance of n Euler samples of the exact v* (from Gaussian noise) to n samples of
    the data, at NFE 1…128: the reference line of every quality-vs-NFE chart."""
    field = exact_field(cfg)
    ref = field.sample_target(n, torch.Generator().manual_seed(99))
    return fv.analysis.quality_vs_nfe(field, source_points("gaussian", n, cfg.seed + 1), ref)


@cached()
def ed_noise(cfg: Settings, n: int = 2000, reps: int = 3) -> float:
    """RMS energy distance between independent n-point sets of the data itself: the sampling
    noise of an energy distance at this size."""
    field, g = exact_field(cfg), torch.Generator().manual_seed(123)
    eds = [fv.metrics.energy_distance(field.sample_target(n, g), field.sample_target(n, g))
           for _ in range(reps)]
    return float(torch.tensor(eds).pow(2).mean().sqrt())


def chart(fig, key: str, traj=None, ts=None, arrays: dict | None = None) -> None:
    """A plotly figure with a download menu (PNG, SVG, CSV; NPZ of ``arrays``/``traj``; a GIF
    of ``traj`` (T, N, 2)). The presenter view draws it larger and without the menu."""
    if presenting():
        enlarge(fig)
    # SVG, not WebGL: a page keeps ~16 WebGL contexts and blanks its oldest charts beyond that
    st.plotly_chart(as_svg(fig), key=key, config=PLOTLY_CONFIG)
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
                  start: str = "Train live", preset=None,
                  after=None) -> fv.TrainState | None:
    """Train / Pause / Reset controls and a fragment that trains ``chunk`` steps per tick.

    States live in ``st.session_state["runs"][key]``: keying by the run's config means coming
    back to a page, or switching back to an earlier setting, shows the finished run instantly.
    ``meta`` (a label, the data it was trained on, ...) is kept on the state for tables.
    ``loss_keys``: the logged parts drawn in the loss chart (an objective's logs names).
    ``monitor(state)``: draws more live charts (e.g. stability monitors) under the loss chart.
    Phases that are not training (e.g. reflow's pair generation) pass ``advance(state, chunk)``
    (default fv.train_steps), ``progress(state) -> (fraction, text)`` and the ``start`` label.
    ``preset``: the run's config (for ReFlow's later phases, its experiment.phase_ids entry):
    when a preset in assets/presets has exactly this config, the page opens on its finished
    state, trained offline, with a "Retrain live" button; ``after``: the previous phase's
    state, which must come from the same preset.
    Returns the state for ``key`` (None before the first click).
    """
    runs = st.session_state.setdefault("runs", {})
    flag, who = f"running:{key}", f"{session_id()}:{key}"
    if key not in runs and preset is not None and presets.enabled() \
            and not st.session_state.get(f"live:{key}"):
        _load_preset(key, preset, after, meta)
    c1, c2, c3 = st.columns([1, 1, 1])
    state = runs.get(key)
    from_preset = state is not None and "preset" in state.meta
    redo = "Retrain live" if isinstance(state, fv.TrainState) else f"{start} live"
    label = redo if from_preset else \
        "Resume" if state is not None and not state.done else start
    if c1.button(label, key=f"train:{key}", type="primary",
                 disabled=state is not None and state.done and not from_preset):
        if state is None or from_preset:
            runs.pop(key, None)
            runs[key] = state = build()
            state.meta.update(meta or {})
            st.session_state[f"live:{key}"] = True
            _bound_runs(runs, key)
        st.session_state[flag] = True
    if c2.button("Pause", key=f"pause:{key}", disabled=not st.session_state.get(flag)):
        st.session_state[flag] = False
        SLOTS.release(who)
    if c3.button("Reset", key=f"reset:{key}", disabled=state is None):
        runs.pop(key, None)
        st.session_state[flag] = False
        st.session_state[f"live:{key}"] = True  # no preset either: start from scratch
        SLOTS.release(who)
        state = None
    if isinstance(preset, fv.FMRun) and not presenting():  # uploadable kinds; not on a projector
        _run_file(key, preset, meta)
    if state is not None and "uploaded" in state.meta:
        st.caption(f"**Uploaded**: {state.meta['uploaded']}. **Reset** returns to this page's "
                   "settings.")
    if state is not None and "preset" in state.meta:
        p = presets.specs()[state.meta["preset"]]
        st.caption(f"**Preset**: trained offline by `{p.command}` from the recorded config "
                   f"`assets/presets/{p.name}.json`, not on this page. **{redo}** runs the "
                   "same settings here.")

    running = bool(st.session_state.get(flag)) and state is not None and not state.done

    @st.fragment(run_every=every if running else None)
    def tick():
        s = runs.get(key)
        if s is None:
            st.caption(f"Not started yet: press **{start}**.")
            return
        if st.session_state.get(flag) and not s.done:
            if (place := SLOTS.request(who)) == 0:
                (advance or fv.train_steps)(s, chunk)
                SLOTS.request(who)  # still here: keep the slot while the next tick comes
            else:
                running, waiting = SLOTS.counts()
                st.info(f"**Waiting for a training slot: number {place} in the queue.** This "
                        f"server trains {SLOTS.limit} runs at once ({running} running, "
                        f"{waiting} waiting); yours starts by itself.")
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
            SLOTS.release(who)
            st.rerun()  # whole page: draw the results of the finished run

    tick()
    return runs.get(key)


# --- one server for a classroom (flowviz.serve): presets, the training queue, bounded memory ---
SLOTS = TrainingSlots(MAX_TRAININGS)  # server-wide: every session's trainings queue here
torch.set_num_threads(TORCH_THREADS)  # per calling thread: trainings x threads <= cores
# torch.optim imports torch._dynamo at the first optimizer it builds (~3 s): pay it once at
# server start, not in the first page that opens a preset or trains
torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
# plotly imports pandas lazily, and sessions whose first figures ran at the same moment raced
# on that import ("partially initialized module 'pandas'", benchmarks/load_test.py): import it
# once here, before any session runs
importlib.import_module("pandas")


def session_id() -> str:
    """An id for this browser session (its trainings' names in the server-wide queue)."""
    return st.session_state.setdefault("session_id", uuid.uuid4().hex[:12])


def partner_preset(key: str):
    """The config of the preset trained for the same time as the preset in runs[key] (its
    page's comparison run), or None: pass it as live_training's ``preset``."""
    s = st.session_state.get("runs", {}).get(key)
    mate = presets.partner_of(s.meta["preset"]) if s is not None and "preset" in s.meta else None
    return mate.run if mate is not None else None


def same_time_caption(partner, main: str, other: str, main_steps: int) -> None:
    """How a run trained for the same time as the page's main run got its steps
    (experiment.same_time): the two step costs and the steps they give."""
    if "cost" not in partner.meta:
        return
    a, b = partner.meta["cost"]
    where = " when the preset was trained" if "preset" in partner.meta else ""
    st.caption(f"Measured cost per step{where}: {main} {a:.1f} ms, {other} {b:.1f} ms (ratio "
               f"{a / b:.2f}), so {other} gets {partner.cfg.steps} steps for the {main} run's "
               f"{main_steps}.")


def _load_preset(key: str, ident, after, meta: dict | None) -> None:
    """Put the finished preset state whose config is ``ident`` into runs[key], if one exists."""
    try:
        hit = presets.find(ident)
    except (ValueError, OSError) as e:  # a broken preset file must not break the page
        st.warning(f"The presets could not be read ({e}); train live instead.")
        return
    if hit is None or (after is not None and after.meta.get("preset") != hit[0].name):
        return
    p, phase = hit
    loaded = st.session_state.setdefault("preset_states", {})
    if p.name not in loaded:
        try:
            loaded[p.name] = presets.load(p, device(settings()))
        except checkpoint.CheckpointError as e:
            st.warning(f"Preset {p.name} could not be loaded: {e} Train live instead.")
            return
    if phase in loaded[p.name]:
        state = loaded[p.name][phase]
        state.meta.update(meta or {})
        st.session_state["runs"][key] = state
        _bound_runs(st.session_state["runs"], key)


def _bound_runs(runs: dict, key: str) -> None:
    """At most MAX_RUNS runs per session: drop the oldest (never ``key`` or a running one) and
    their cached evaluations, and say so."""
    keep = {key} | {k for k in runs if st.session_state.get(f"running:{k}")}
    labels = {k: getattr(s, "meta", {}).get("label", k.split(":")[0]) for k, s in runs.items()}
    dropped = evict_oldest(runs, MAX_RUNS, keep)
    if not dropped:
        return
    for name, v in list(st.session_state.items()):
        if str(name).endswith("_results") and isinstance(v, dict):
            for rk in [rk for rk in v if isinstance(rk, tuple) and rk and rk[0] in dropped]:
                del v[rk]
    st.toast(f"This session keeps at most {MAX_RUNS} trained runs: removed the oldest "
             f"({'; '.join(labels[k] for k in dropped)}).")


DATA_FIELDS = ("source", "target", "n_data", "data_seed", "h")


def _run_file(key: str, run, meta: dict | None) -> None:
    """Load this run slot from a file: a checkpoint (.pt) or config (.json) of the page's model
    kind, validated by flowviz.checkpoint.load_upload (weights_only, the kind, the config's
    fields, the weights' shapes) and required to use the sidebar's data. A config is trained
    live; a checkpoint is shown as it is."""
    msg_key = f"runfile_msg:{key}"
    with st.expander("Load a checkpoint (.pt) or config (.json) for this run",
                     expanded=msg_key in st.session_state):
        f = st.file_uploader("A checkpoint saved by `python -m flowviz train --out`, or a run's "
                             "config JSON (as shown under the controls)", type=["pt", "json"],
                             key=f"runfile:{key}")
        if f is not None and st.session_state.get(f"runfile_digest:{key}") != (
                digest := hashlib.sha1(f.getvalue()).hexdigest()):
            st.session_state[f"runfile_digest:{key}"] = digest
            st.session_state[msg_key] = _read_run_file(key, f.name, f.getvalue(), run, meta)
            if st.session_state[msg_key][0] == "success":
                st.rerun()  # the controls above show the new run
        if (m := st.session_state.get(msg_key)) is not None:
            (st.error if m[0] == "error" else st.success)(m[1])


def _read_run_file(key: str, name: str, raw: bytes, run, meta: dict | None) -> tuple[str, str]:
    try:
        new, state = checkpoint.load_upload(name, raw, type(run), device(settings()),
                                            uploaded_points())
        if other := {k: v for k, v in config.diff(new, run).items() if k in DATA_FIELDS}:
            raise checkpoint.CheckpointError(
                "it was made for other data (" + ", ".join(
                    f"{k} = {a!r}, here {b!r}" for k, (a, b) in sorted(other.items()))
                + "): choose the same data in the sidebar first.")
    except checkpoint.CheckpointError as e:
        return "error", f"{name} was not loaded: {e}"
    trains = state is None
    if trains:  # a config: train it live in this slot
        state = phases(new, device(settings()), uploaded_points())["run"]({})
    state.meta.update(meta or {})
    state.meta.update(uploaded=name, label=f"uploaded {name}")
    st.session_state["runs"][key] = state
    st.session_state[f"live:{key}"] = True
    st.session_state[f"running:{key}"] = trains
    changed = config.diff(new, run)
    return "success", (f"Loaded {name}" + (" and training it live" if trains else "")
                       + (": it differs from the controls in " + ", ".join(
                           f"{k} = {a!r}" for k, (a, _) in sorted(changed.items()))
                          if changed else ": the same settings as the controls") + ".")


_SHARED: dict = {}  # (store, (run key, step)) -> a preset run's evaluation, for every session
_PENDING: dict = {}  # the same keys -> an Event while one session computes them
_SHARED_LOCK = threading.Lock()


class Results(dict):
    """A page's per-session cache of evaluations keyed (run key, step). Entries of preset runs
    are the same in every session (same weights, same data), so they live in one server-wide
    store, computed once: a session asking while another computes one waits for it. They are
    also kept on disk (flowviz.store, keyed by the preset's weights and the page's code), so a
    fresh server serves them from assets/evals or the user's cache without computing. An entry
    is written when it is assigned: build it whole, then assign (later changes stay in memory)."""

    def __init__(self, name: str, page: str = ""):
        super().__init__()
        self.name, self.page = name, page

    @staticmethod
    def _runs(rk) -> list:
        """The runs an entry key names: rk[0], and any other member that is a run key (an
        entry comparing two runs)."""
        runs = st.session_state.get("runs", {})
        keys = [x for x in rk if isinstance(x, str) and x in runs] \
            if isinstance(rk, tuple) and rk else []
        return [runs[x] for x in keys] if keys and keys[0] == rk[0] else []

    def _shared(self, rk) -> tuple | None:
        """A key for the server-wide store when every run the entry uses is a preset."""
        used = self._runs(rk)
        return (self.name, rk) if used and all("preset" in s.meta for s in used) else None

    def _disk_key(self, k) -> str:
        weights = [presets.weights_digest(s.meta["preset"]) for s in self._runs(k[1])]
        return store.digest("results", k, weights, store.source_digest(self.page))

    def __contains__(self, rk) -> bool:
        if dict.__contains__(self, rk):
            return True
        if (k := self._shared(rk)) is None:
            return False
        with _SHARED_LOCK:
            if k in _SHARED:
                return True
            try:
                _SHARED[k] = store.load(self._disk_key(k))
                return True
            except KeyError:
                pass
            if (ev := _PENDING.get(k)) is None:
                _PENDING[k] = threading.Event()
                return False  # this session computes it
        ev.wait(timeout=120)
        with _SHARED_LOCK:  # not there: the other session failed; this one computes it
            if k not in _SHARED:
                _PENDING[k] = threading.Event()
            return k in _SHARED

    def __getitem__(self, rk):
        if dict.__contains__(self, rk) or (k := self._shared(rk)) is None:
            return dict.__getitem__(self, rk)
        return _SHARED[k]

    def get(self, rk, default=None):  # a look-up that never claims the computation
        if dict.__contains__(self, rk):
            return dict.__getitem__(self, rk)
        k = self._shared(rk)
        return _SHARED.get(k, default) if k is not None else default

    def __setitem__(self, rk, value) -> None:
        if (k := self._shared(rk)) is None:
            return dict.__setitem__(self, rk, value)
        store.save(self._disk_key(k), value)
        with _SHARED_LOCK:
            _SHARED[k] = value
            if (ev := _PENDING.pop(k, None)) is not None:
                ev.set()


def results(name: str) -> Results:
    """This session's evaluation cache ``name`` (preset runs' entries shared, see Results)."""
    page = sys._getframe(1).f_globals.get("__file__", "")  # the page that computes them
    return st.session_state.setdefault(name, Results(name, page))
