"""Live training on a page: Train / Pause / Reset, a fragment that trains a chunk per tick, the
server-wide queue (flowviz.serve), presets opened finished, and a bound on each session's runs."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import streamlit as st
import torch

import flowviz as fv
from flowviz import checkpoint, presets
from flowviz.serve import MAX_RUNS, MAX_TRAININGS, TORCH_THREADS, TrainingSlots, evict_oldest
from views import live_view as lv
from views.present import presenting
from views.runfile import run_file
from views.state import device, session_id, settings

SLOTS = TrainingSlots(MAX_TRAININGS)  # server-wide: every session's trainings queue here


def prepare_server() -> None:
    """Once per server process, from app.py and views.launch (never at import): torch threads
    per training (trainings x threads <= cores); the first optimizer (torch.optim imports
    torch._dynamo, ~3 s) and pandas (sessions whose first figures ran at the same moment raced
    on plotly's lazy import of it: "partially initialized module 'pandas'") paid up front."""
    global _prepared
    if _prepared:
        return
    torch.set_num_threads(TORCH_THREADS)
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    import pandas  # noqa: F401
    _prepared = True


_prepared = False


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
    state, which must come from the same preset; it is also the phase this one is built from:
    once that phase is retrained, this one is stale (``is_stale``) and can be built again as
    soon as the new one is done.
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
    stale = _mark_stale(state, after)
    # by name, not isinstance: a dev server's file watcher reloads flowviz under a live state
    redo = "Retrain live" if type(state).__name__ == "TrainState" else f"{start} again"
    label = start if stale else redo if from_preset else \
        "Resume" if state is not None and not state.done else start
    # a phase is (re)built only on a finished, current previous phase (none: the first phase)
    ready = not stale if after is None else after.done and not after.meta.get("stale")
    if c1.button(label, key=f"train:{key}", type="primary",
                 disabled=(state is not None and state.done and not from_preset and not stale)
                 or ((state is None or from_preset or stale) and not ready)):
        if state is None or from_preset or stale:
            runs.pop(key, None)
            runs[key] = state = build()
            state.meta.update(meta or {})
            _built_on(state, after)
            lv.clock_reset(key)
            st.session_state[f"live:{key}"] = True
            _bound_runs(runs, key)
        st.session_state[flag] = True
        lv.clock_start(key)
    if c2.button("Pause", key=f"pause:{key}", disabled=not st.session_state.get(flag)):
        st.session_state[flag] = False
        SLOTS.release(who)
        lv.clock_stop(key)
    if c3.button("Reset", key=f"reset:{key}", disabled=state is None):
        runs.pop(key, None)
        st.session_state[flag] = False
        st.session_state[f"live:{key}"] = True  # no preset either: start from scratch
        SLOTS.release(who)
        lv.clock_reset(key)
        st.rerun()  # the Train button above was drawn for the old, finished run: redraw it
    if isinstance(preset, fv.FMRun) and not presenting():  # uploadable kinds; not on a projector
        run_file(key, preset, meta)
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
                if advance is not None:
                    advance(s, chunk)
                else:  # about TICK_S per tick even when steps are slow
                    fv.train_steps(s, lv.chunk_for(s, chunk))
                SLOTS.request(who)  # still here: keep the slot while the next tick comes
            else:
                running, waiting = SLOTS.counts()
                st.info(f"**Waiting for a training slot: number {place} in the queue.** This "
                        f"server trains {SLOTS.limit} runs at once ({running} running, "
                        f"{waiting} waiting); yours starts by itself.")
        frac, text = progress(s) if progress else (
            min(1.0, s.step / s.cfg.steps),
            lv.progress_text(key, s))
        st.progress(frac, text=text)
        if s.status == "nan":
            st.error(s.message)
        if s.history:
            lv.live_charts(s, key, loss_keys, preset,
                        bool(st.session_state.get(flag)) and not s.done)
            if monitor is not None:
                monitor(s)
        if s.done and st.session_state.get(flag):
            st.session_state[flag] = False
            SLOTS.release(who)
            lv.clock_stop(key)
            st.rerun()  # whole page: draw the results of the finished run

    tick()
    return runs.get(key)


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
        _built_on(state, after)
        st.session_state["runs"][key] = state
        _bound_runs(st.session_state["runs"], key)


# --- phases built on phases: a later phase is stale once an earlier one is retrained --------

_STAMPS = itertools.count(1)


def _stamp(state) -> int:
    """An id of this very state (not of its config: a retrained phase has the same key)."""
    return state.meta.setdefault("stamp", next(_STAMPS))


def _built_on(state, after) -> None:
    if after is not None:
        state.meta["built_on"] = _stamp(after)
        state.meta["stale"] = False


def is_stale(state) -> bool:
    """Whether ``state`` was built on a phase that has been retrained or reset since (or on a
    stale one): live_training(..., after=) marks it and offers to build it again."""
    return bool(state is not None and state.meta.get("stale"))


def _mark_stale(state, after) -> bool:
    if state is None or "built_on" not in state.meta:
        return False
    state.meta["stale"] = after is None or after.meta.get("stamp") != state.meta["built_on"] \
        or bool(after.meta.get("stale"))
    return state.meta["stale"]


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
