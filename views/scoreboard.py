"""The scoreboard: every fast generator on one quality-vs-NFE chart, with honest compute.

Article §6.3.1 (the argument as a whole): 1-RF, minibatch OT, 2-RF, 2-RF + distillation,
Shortcut and MeanFlow on the sidebar's dataset, the runs the other pages train (at their default
settings they load from the presets), sampled from the same noise against the same data. The
question (which is best at one call?) comes before the chart; step costs and the published
image-scale figures are in "Go deeper".
"""

import pandas as pd
import streamlit as st

from flowviz import presets, store
from flowviz import scoreboard as sb
from flowviz.viz.figures import quality_vs_nfe_fig
from flowviz.viz.style import format_distance
from views.cache import noise_floor
from views.charts import chart
from views.reproduce import reproduce_box
from views.state import device, page_settings, run_key, uploaded_points
from views.teach import ask, deeper, notice, verdict, waiting
from views.training import live_training

N_EVAL = 1500
# Published image-scale one-step figures: a reference, never mixed with the measured ones.
PUBLISHED = [
    {"method": "2-rectified flow + distillation", "data": "CIFAR-10", "NFE": 1,
     "FID": 4.85, "source": "Liu, Gong & Liu 2022 (rectified flow), Table 1"},
    {"method": "MeanFlow", "data": "CIFAR-10 (unconditional)", "NFE": 1, "FID": 2.92,
     "source": "Geng et al. 2025 (Mean Flows for one-step generative modeling)"},
]
RUN_LABELS = {"reflow": "1-RF and 2-RF (ReFlow run)", "ot": "Minibatch-OT flow",
              "shortcut": "Shortcut", "meanflow": "MeanFlow"}


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


def finished(runner) -> tuple:
    return tuple(k for k in sb.NAMES if k in runner.jobs and runner.jobs[k].done
                 and getattr(runner.jobs[k], "status", "") != "nan")


def _curves(runner, runs: dict, uploaded, dev) -> dict:
    x0, ref = sb.eval_points(runs, N_EVAL, uploaded=uploaded)
    return sb.curves(runner, x0.to(dev), ref.to(dev))


@st.cache_resource(show_spinner="Measuring the presets at NFE 1…128…", max_entries=8)
def preset_curves(runs_key: str, done: tuple, dev: str, _runner, _runs) -> dict:
    """Curves of preset models only: the same for every session, measured once (flowviz.store
    keeps them on disk, keyed by the presets' weights and this page's code)."""
    weights = sorted(presets.weights_digest(_runner.jobs[k].meta["preset"]) for k in done)
    key = store.digest("scoreboard", runs_key, done, dev, weights,
                       store.source_digest(__file__))
    return store.fetch(key, lambda: _curves(_runner, _runs, None, dev))


def measured(key: str, runner, runs: dict, uploaded, dev) -> dict:
    """Curves of the finished methods (recomputed when a new one finishes)."""
    done = finished(runner)
    if all("preset" in runner.jobs[k].meta for k in done):
        return preset_curves(str(runs), done, str(dev), runner, runs)
    res, rk = st.session_state.setdefault("sb_results", {}), (key, done)
    if rk not in res:
        res[rk] = _curves(runner, runs, uploaded, dev)
    return res[rk]


def training_section(key: str, runner, runs: dict) -> None:
    """What is still to train for these settings, and the button that trains it."""
    todo = [sb.NAMES[k] for k in sb.NAMES if k not in finished(runner)]
    if todo:
        st.info(f"Still to train for these settings: **{', '.join(todo)}**. At the sidebar's "
                "default settings the presets hold all but the distilled student (about 15 s).")
    live_training(key, lambda: runner, chunk=1, meta={"label": "scoreboard"},
                  advance=lambda s, n: s.advance(), progress=sb.progress,
                  start="Train the missing methods")
    reproduce_box("scoreboard", "sb_", {f"{RUN_LABELS[k]}: config": r.to_json()
                                        for k, r in runs.items()})


def scoreboard_chart(key: str, curves: dict, floor: float) -> None:
    named = {sb.NAMES[k]: (n, q) for k, (n, q) in curves.items()}
    chart(quality_vs_nfe_fig(named, title="Energy distance to the data vs NFE (lower is better)",
                             height=440, floor=floor), f"sb-chart-{key}")
    st.caption(f"{N_EVAL} samples from fresh noise against {N_EVAL} fresh samples of the "
               "training distribution; each method with its own sampler (Euler for the flows, "
               "M shortcut steps, M MeanFlow jumps, one call for the student). The grey band is "
               "the distance's sampling noise: below it, two methods cannot be told apart.")


def compute_table(runner, runs: dict, curves: dict, floor: float) -> None:
    """What each point of the chart cost: its training budget and the seconds of every phase
    behind it (its own, the teacher's, the pairs')."""
    cost, budget = sb.compute(runner), sb.budgets(runs)
    rows = []
    for k, (_, q) in curves.items():
        b, c = budget[k], cost[k]
        rows.append({"method": sb.NAMES[k], "NFE 1": format_distance(q[0], floor),
                     "trained": f"{b['steps']} steps × {b['batch']}, width {b['width']}",
                     "examples seen": f"{b['examples'] / 1e6:.2f} M",
                     "own s": f"{c['training']:.1f}", "teacher s": f"{c['teacher']:.1f}",
                     "pairs s": f"{c['pairs']:.1f}", "total s": f"{c['total']:.1f}",
                     "from": "preset" if runner.jobs[k].meta.get("preset") else "this session"})
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption("The methods had different budgets (steps × batch, network width; 'examples "
               "seen' counts the flows a method was made from): compare them with it. Seconds "
               "are wall time where each phase ran: for a preset, on the machine and load that "
               "trained it; read them as orders of magnitude. 'Teacher' is the training of the "
               "flows a model was made from, 'pairs' the ODE solves for its training pairs.")


def one_call_answer(curves: dict, committed: str, floor: float) -> tuple[str, str]:
    """The method closest to the data at NFE 1 (the committed one when it is within the
    sampling noise of the best), and the numbers behind it."""
    one = {sb.NAMES[k]: q[0] for k, (n, q) in curves.items() if n[0] == 1}
    best = min(one, key=one.get)
    answer = committed if committed in one and one[committed] - one[best] <= floor else best
    numbers = ", ".join(f"{m} {format_distance(v, floor)}" for m, v in one.items())
    return answer, numbers


def step_costs(key: str, runs: dict, dev) -> None:
    """Shortcut's and MeanFlow's training step against flow matching with the same network."""
    over = st.session_state.get(f"sb_over:{key}")
    if st.button("Measure step costs (about 10 s)", key="sb_measure",
                 help="Times Shortcut and MeanFlow steps against flow matching with the same "
                      "network and batch, interleaved on this machine."):
        with st.spinner("Timing training steps…"):
            over = sb.step_overheads(runs, dev)
        st.session_state[f"sb_over:{key}"] = over
    if over:
        st.markdown(f"One training step against flow matching with the same network, on this "
                    f"machine: MeanFlow **{over['meanflow']:.2f}×** (its JVP), Shortcut "
                    f"**{over['shortcut']:.2f}×** (its self-consistency targets).")
    else:
        st.caption("A one-step model also pays per training step: MeanFlow a Jacobian-vector "
                   "product, Shortcut the extra passes of its self-consistency targets.")


def published() -> None:
    st.dataframe(pd.DataFrame(PUBLISHED), hide_index=True)
    st.caption("Fréchet Inception Distance on images, as the papers report it. Nothing on this "
               "page is comparable to these numbers: they are listed so the 2-D results can be "
               "read against what the methods do at scale.")


st.title("Scoreboard: every fast generator on one chart")
st.caption("Article §6.3.1 · the runs the other pages train, on the sidebar's data, from the "
           "same noise against the same data")
cfg = page_settings()
dev = device(cfg)
up = uploaded_points()
runs = sb.runs_for(cfg.source, cfg.target, cfg.n_data, cfg.h, cfg.seed)
key = run_key("sb", str(runs), cfg.upload, str(dev))
state = st.session_state.get("runs", {}).get(key)
runner = state if state is not None else fresh(runs, cfg.seed, dev, up)
notice("Six ways to generate fast, trained on the same data and sampled from the same noise. "
       "Read the chart at one network call first, then what each method paid for it: a "
       "teacher, pairs, or a costlier training step.", "§6.3.1")
training_section(key, runner, runs)
methods = [sb.NAMES[k] for k in finished(runner)]
choice = ask("sb-best", "At ONE network call, which method comes closest to the data here?",
             methods, "§6.3.1") if len(methods) > 1 else None
if len(methods) < 2:
    st.info("Train the methods above to compare them.")
elif choice is None:
    waiting()
else:
    curves = measured(key, runner, runs, up, dev)
    floor = noise_floor(cfg, N_EVAL)
    scoreboard_chart(key, curves, floor)
    answer, numbers = one_call_answer(curves, choice, floor)
    verdict("sb-best", answer,
            f"Measured at NFE 1: {numbers}. The 1-RF's single Euler step lands on the average "
            "of the data (§2); reflow, distillation, shortcuts and average velocities each buy "
            "the one step back.")
    compute_table(runner, runs, curves, floor)
section = deeper("sb_deeper", ["Step costs", "Published image-scale figures"])
if section == "Step costs":
    step_costs(key, runs, dev)
elif section == "Published image-scale figures":
    published()
