"""The scoreboard: every fast generator on one quality-vs-NFE chart, with honest compute.

Article §6.3.1 (the argument as a whole): 1-RF, minibatch OT, 2-RF, 2-RF + distillation,
Shortcut and MeanFlow on the sidebar's dataset, the runs the other pages train (at their default
settings they load from the presets), sampled from the same noise against the same data.
"""

import pandas as pd
import streamlit as st

from flowviz import presets, store
from flowviz import scoreboard as sb
from flowviz.viz.figures import quality_vs_nfe_fig
from views.charts import chart
from views.reproduce import reproduce_box
from views.state import device, page_settings, run_key, uploaded_points
from views.teach import notice, predict
from views.training import live_training

N_EVAL = 1500
FLOOR = 1e-4
# Published image-scale one-step figures: a reference, never mixed with the measured ones.
PUBLISHED = [
    {"method": "2-rectified flow + distillation", "data": "CIFAR-10", "NFE": 1,
     "FID": 4.85, "source": "Liu, Gong & Liu 2022 (rectified flow), Table 1"},
    {"method": "MeanFlow", "data": "CIFAR-10 (unconditional)", "NFE": 1, "FID": 2.92,
     "source": "Geng et al. 2025 (Mean Flows for one-step generative modeling)"},
]


@st.cache_resource(show_spinner="Loading the presets…", max_entries=8)
def preloaded(runs_key: tuple, _runs: dict, dev: str):
    """The scoreboard with every phase a preset holds (read-only: trained copies are new)."""
    return sb.scoreboard(_runs, seed=runs_key[-1], device=dev)


def fresh(runs: dict, seed: int, dev, uploaded):
    """A session's own scoreboard: the preset phases (shared, never trained further) plus the
    phases still to train."""
    r = sb.scoreboard(runs, seed=seed, device=dev, uploaded=uploaded, use_presets=False)
    base = preloaded((str(runs), seed), runs, str(dev)) if uploaded is None else None
    if base is not None:
        r.jobs.update({k: v for k, v in base.jobs.items() if v.done})
    return r


def _curves(runner, runs: dict, uploaded, dev) -> dict:
    x0, ref = sb.eval_points(runs, N_EVAL, uploaded=uploaded)
    return sb.curves(runner, x0.to(dev), ref.to(dev))


@st.cache_resource(show_spinner="Measuring the presets at NFE 1…128…", max_entries=8)
def preset_curves(runs_key: str, finished: tuple, dev: str, _runner, _runs) -> dict:
    """Curves of preset models only: the same for every session, measured once (flowviz.store
    keeps them on disk, keyed by the presets' weights and this page's code)."""
    weights = sorted(presets.weights_digest(_runner.jobs[k].meta["preset"]) for k in finished)
    key = store.digest("scoreboard", runs_key, finished, dev, weights,
                       store.source_digest(__file__))
    return store.fetch(key, lambda: _curves(_runner, _runs, None, dev))


def measured(key: str, runner, runs: dict, uploaded, dev) -> dict:
    """Curves of the finished methods (recomputed when a new one finishes)."""
    finished = tuple(k for k in sb.NAMES if k in runner.jobs and runner.jobs[k].done)
    if all("preset" in runner.jobs[k].meta for k in finished):
        return preset_curves(str(runs), finished, str(dev), runner, runs)
    res, rk = st.session_state.setdefault("sb_results", {}), (key, finished)
    if rk not in res:
        res[rk] = _curves(runner, runs, uploaded, dev)
    return res[rk]


st.title("Scoreboard: every fast generator on one chart")
st.caption("Article §6.3.1 and the whole argument · the runs the other pages train, on the "
           "sidebar's data, from the same noise against the same data")
cfg = page_settings()
dev = device(cfg)
up = uploaded_points()
runs = sb.runs_for(cfg.source, cfg.target, cfg.n_data, cfg.h, cfg.seed)
key = run_key("sb", str(runs), cfg.upload, str(dev))
state = st.session_state.get("runs", {}).get(key)
runner = state if state is not None else fresh(runs, cfg.seed, dev, up)
notice("Read the chart from left to right: at NFE 1 only the straightened or jump-trained "
       "models (2-RF, its distilled student, Shortcut, MeanFlow) are near the data, while the "
       "1-RF needs tens of steps. Then read the compute columns: every one-step model paid "
       "for it somewhere, in a teacher, in pairs, or in a costlier training step.", "§6.3.1")

todo = [k for k in sb.NAMES if k not in runner.jobs or not runner.jobs[k].done]
if todo:
    names = ", ".join(sb.NAMES[k] for k in todo)
    st.info(f"Still to train for these settings: **{names}**. At the sidebar's default "
            "settings the presets hold all but the distilled student (about 15 s).")
RUN_LABELS = {"reflow": "1-RF and 2-RF (ReFlow run)", "ot": "Minibatch-OT flow",
              "shortcut": "Shortcut", "meanflow": "MeanFlow"}
reproduce_box("scoreboard", "sb_", {f"{RUN_LABELS[k]}: config": r.to_json()
                                    for k, r in runs.items()})
live_training(key, lambda: runner, chunk=1, meta={"label": "scoreboard"},
              advance=lambda s, n: s.advance(), progress=lambda s: s.progress(),
              start="Train the missing methods")

curves = measured(key, runner, runs, up, dev)
if curves:
    named = {sb.NAMES[k]: (n, [max(FLOOR, v) for v in q]) for k, (n, q) in curves.items()}
    chart(quality_vs_nfe_fig(named, title="Energy distance to the data vs NFE (lower is better)",
                             height=460), f"sb-chart-{key}")
    st.caption(f"{N_EVAL} samples from fresh noise against {N_EVAL} fresh samples of the "
               "training distribution; each method with its own sampler (Euler for the flows, "
               "M shortcut steps, M MeanFlow jumps, one call for the student). The energy "
               f"distance's sampling noise at this size is about 0.001; values under {FLOOR:g} "
               "are drawn at it.")

    cost = sb.compute(runner)
    over = st.session_state.get(f"sb_over:{key}")
    rows = []
    for k, (n, q) in curves.items():
        at = dict(zip(n, q, strict=True))
        c = cost[k]
        rows.append({"method": sb.NAMES[k], "NFE 1": at.get(1), "NFE 4": at.get(4),
                     "NFE 128": at.get(128), "own training s": c["training"],
                     "teacher s": c["teacher"], "pair generation s": c["pairs"],
                     "total s": c["total"],
                     "step cost vs FM": (over or {}).get(k, float("nan")),
                     "from": "preset" if runner.jobs[k].meta.get("preset") else "this session"})
    fmt = {c: "{:.4f}" for c in ("NFE 1", "NFE 4", "NFE 128")} | \
        {c: "{:.1f}" for c in ("own training s", "teacher s", "pair generation s", "total s")} | \
        {"step cost vs FM": "{:.2f}×"}
    st.dataframe(pd.DataFrame(rows).style.format(fmt, na_rep="–"), hide_index=True)
    st.caption("Seconds are wall time of each phase where it ran: for a preset, on the machine "
               "and load that trained it (recorded in its checkpoint); compare them as orders of "
               "magnitude. 'Teacher' is the training of the flows a model was made from; 'pair "
               "generation' the ODE solves for its training pairs.")
    if st.button("Measure step costs (about 10 s)", key="sb_measure",
                 help="Times Shortcut and MeanFlow steps against flow matching with the same "
                      "network and batch, interleaved on this machine."):
        with st.spinner("Timing training steps…"):
            o = sb.step_overheads(runs, dev)
        st.session_state[f"sb_over:{key}"] = {"shortcut": o["shortcut"], "meanflow": o["meanflow"]}
        st.rerun()
    if over:
        st.caption(f"Step cost vs FM with the same network: MeanFlow {over['meanflow']:.2f}× "
                   f"(its JVP), Shortcut {over['shortcut']:.2f}× (its self-consistency "
                   "targets), measured on this machine.")

    one = {sb.NAMES[k]: q[0] for k, (n, q) in curves.items() if n[0] == 1}
    if len(one) > 2:
        best = min(one, key=one.get)
        predict("sb-best", "At ONE network call, which method comes closest to the data here?",
                list(one), best,
                "Measured at NFE 1: " + ", ".join(f"{m} {v:.4f}" for m, v in one.items())
                + ". The 1-RF's single Euler step lands on the average of the data (§2), "
                "which is why it is far behind.", "§6.3.1")

with st.expander("Published image-scale figures (a reference: not measured here)"):
    st.dataframe(pd.DataFrame(PUBLISHED), hide_index=True)
    st.caption("Fréchet Inception Distance on images, as the papers report it. Nothing on this "
               "page is comparable to these numbers: they are listed so the 2-D results can be "
               "read against what the methods do at scale.")
