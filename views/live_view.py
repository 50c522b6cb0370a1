"""What the live-training fragment draws (views.training): real elapsed time, the loss with its
floor, and every ~1 s the current model's one- and few-step samples over the data (2-D runs).
Everything is derived from the run's state and config, so pages pass nothing more."""

from __future__ import annotations

import time

import streamlit as st
import torch

import flowviz as fv
from flowviz import live
from views.cache import cached
from views.charts import chart
from views.state import settings, uploaded_points

PREVIEW_EVERY = 1.0  # s between two sample previews while training
N_PREVIEW, FEW = 500, 4  # points per cloud; the few-step sampler's NFE
N_FLOOR = 8000  # Monte-Carlo draws of the floor (standard error ~1.5 %)
TICK_S = 0.8  # training time per tick: a slow step (a busy server) still redraws every ~1 s


# --- real elapsed time -------------------------------------------------------------------------

def clock_start(key: str) -> None:
    """Train/Resume pressed: the wall clock of this run runs from now."""
    c = st.session_state.setdefault(f"wall:{key}", {"before": 0.0, "since": None})
    c["since"] = c["since"] or time.monotonic()


def clock_reset(key: str) -> None:
    """A new run under ``key`` (built, or reset): no time and no preview yet."""
    st.session_state.pop(f"wall:{key}", None)
    st.session_state.pop(f"preview_memo:{key}", None)


def clock_stop(key: str) -> None:
    """Pause, Reset or the end: the time since the last start is added up."""
    c = st.session_state.get(f"wall:{key}")
    if c and c["since"] is not None:
        c["before"] += time.monotonic() - c["since"]
        c["since"] = None


def elapsed(key: str) -> float | None:
    """Seconds since Train, without pauses (None: not trained here, e.g. a preset)."""
    c = st.session_state.get(f"wall:{key}")
    if c is None:
        return None
    return c["before"] + (time.monotonic() - c["since"] if c["since"] is not None else 0.0)


def progress_text(key: str, s) -> str:
    wall = elapsed(key)
    spent = f"{s.seconds:.1f} s of training" if wall is None else \
        f"{wall:.1f} s since Train ({s.seconds:.1f} s of it training)"
    return f"step {s.step} / {s.cfg.steps} · {spent}"


def chunk_for(s, chunk: int) -> int:
    """Steps for this tick: ``chunk``, fewer when steps are slow, so each tick trains about
    TICK_S; the first tick trains 10 steps (a first loss point at once after the click)."""
    if not isinstance(s, fv.TrainState) or s.step == 0 or s.seconds <= 0:
        return min(chunk, 10)
    return max(1, min(chunk, int(TICK_S * s.step / s.seconds)))


# --- the run behind a state ----------------------------------------------------------------------

def run_of(preset, s) -> fv.FMRun | None:
    """The 2-D run config of a live state: live_training's ``preset`` (for ReFlow's later phases
    its 1-RF run, the data they share) or ``meta["run"]``; None for other kinds."""
    parts = preset if isinstance(preset, tuple) else (preset,)
    meta = getattr(s, "meta", {})
    return next((p for p in (*parts, meta.get("run")) if isinstance(p, fv.FMRun)), None)


@cached()
def loss_floor(data: fv.FMRun, law, upload: str) -> float | None:
    """The floor E‖x1 − x0 − v*(x_t, t)‖² of a run's flow-matching loss, t from ``law``
    (flowviz.live.floor_part)."""
    field = live.run_field(data, uploaded_points())
    return None if field is None else live.fm_loss_floor(field, N_FLOOR, live.time_law(law))[0]


def loss_chart(s, key: str, loss_keys, preset) -> None:
    """The loss curve; for a run of independent pairs from N(0, I) on a fixed data set, the
    floor of its flow-matching parts as dotted lines, with why the loss stays above them."""
    fig = fv.viz.loss_fig(s.history, loss_keys)
    run = preset if isinstance(preset, fv.FMRun) else None  # ReFlow's k-RF: coupled pairs
    part = live.floor_part(run) if run is not None else None
    shares = {k: w for k, w in part[0].items() if k in loss_keys and k in s.history[0]} \
        if part is not None else {}
    floor = loss_floor(live.data_of(run), part[1], settings().upload) if shares else None
    if floor is None:
        chart(fig, key=f"loss:{key}")
        return
    for w in shares.values():
        fig.add_hline(y=w * floor, line=dict(dash="dot", color="gray", width=2))
    lowest = min([w * floor for w in shares.values()]
                 + [h[k] for h in s.history for k in loss_keys if h.get(k, 0) > 0])
    fv.viz.style.log_axis(fig, "y", lo=0.9 * lowest)  # the floor in view from the start
    chart(fig, key=f"loss:{key}")
    share = "" if all(w == 1 for w in shares.values()) else \
        " (the total: that times its share of flow-matching rows)"
    values = ", ".join(f"{k} {w * floor:.2f}" for k, w in shares.items())
    st.caption(f"Dotted: the floor E‖x1 − x0 − v*(x_t, t)‖² ({values}), from the exact field "
               f"of the same data{share}. Pairs through one point x_t head in different "
               "directions and a network can only predict their average v*, so their spread "
               "stays in the loss however long it trains.")


# --- the model at work -------------------------------------------------------------------------

def live_charts(s, key: str, loss_keys, preset, training: bool) -> None:
    """The loss chart; while training, under it the model at work (2-D runs)."""
    loss_chart(s, key, loss_keys, preset)
    if training and previewable(s, preset):
        samples_preview(s, key, preset)


def previewable(s, preset) -> bool:
    model = getattr(s, "sampler_model", None)
    return model is not None and run_of(preset, s) is not None and live.kind_of(model) is not None


def samples_preview(s, key: str, preset) -> None:
    """The current model's 1- and FEW-step samples over the data, redrawn at most every
    PREVIEW_EVERY seconds."""
    model, run = s.sampler_model, run_of(preset, s)
    memo = st.session_state.get(f"preview_memo:{key}")
    now = time.monotonic()
    if memo is None or (memo["step"] != s.step and now - memo["at"] >= PREVIEW_EVERY):
        g = torch.Generator().manual_seed(run.data_seed + 7)
        sample_x0, sample_x1 = fv.experiment.data_samplers(run, uploaded_points())
        x0, data = sample_x0(N_PREVIEW, g)[0], sample_x1(N_PREVIEW, g)[0]
        p = next(model.parameters())
        one = live.few_step(model, x0.to(p.device, p.dtype), 1)
        few = live.few_step(model, x0.to(p.device, p.dtype), FEW)
        memo = {"at": now, "step": s.step, "clouds": {
            "data": data, "1 step": one.cpu(), f"{FEW} steps": few.cpu()}}
        st.session_state[f"preview_memo:{key}"] = memo
    chart(fv.viz.clouds_fig(memo["clouds"], f"The model at step {memo['step']}", height=360),
          key=f"preview:{key}")
