"""MeanFlow: learn the mean velocity, jump in one step (article §6–6.2; Geng et al. 2025).

The lesson: the chord u against the tangent v at a point of the exact flow, which single call
lands on the data, and u learned through the MeanFlow identity. The rest is behind "Go deeper"
(views/meanflow_deeper.py).
"""

import streamlit as st
import torch

import flowviz as fv
from flowviz import presets
from flowviz.experiment import FAST_MEANFLOW, MeanFlowRun, build_meanflow
from flowviz.meanflow_lesson import along_path, evaluate, jump_or_step, tangent_and_chord
from flowviz.methods import meanflow as mf
from flowviz.reproduce import jumps_panel, one_step_jumps
from flowviz.viz import meanflow as mviz
from flowviz.viz.style import format_distance
from views import meanflow_deeper
from views.cache import (
    cached,
    data_points,
    exact_field,
    exact_nfe_curve,
    noise_floor,
    source_points,
)
from views.charts import chart
from views.reproduce import reproduce_box
from views.results import results
from views.state import device, page_settings, run_key, uploaded_points
from views.teach import ask, verdict, waiting
from views.training import live_training, training_active

LIM, GRID, N_EVAL = 3.5, 40, 2000  # (t, r) grid of 1/40; samples per quality estimate
PRESET = FAST_MEANFLOW
ANSWERS = {"step": "A step of v⋆: x0 + v⋆(x0, 0)", "jump": "A jump of u⋆: x0 + u⋆(x0, 0, 1)",
           "same": "Both equally well"}


def substeps(cfg) -> int:
    """RK4 steps per grid step: the h = 0 field is nearly singular at t = 1 and needs more."""
    return 1 if cfg.h > 0 else 5


@cached(show_spinner=False, max_entries=64)
def exact_mean(cfg, px: float, py: float) -> dict:
    """v* and its mean velocity u* along the exact trajectory from (px, py) at t = 0."""
    r = mf.mean_vs_instantaneous(exact_field(cfg), torch.tensor([[px, py]]), GRID, substeps(cfg))
    return {"ts": r["ts"], "traj": r["traj"][:, 0], "v": r["v"][:, 0], "u": r["u"][:, :, 0]}


@cached(show_spinner=False, max_entries=16)
def exact_jumps(cfg, n: int = 200) -> dict:
    """One Euler step of v* against one jump of u*(x0, 0, 1), the flow's end by 12 RK4 steps."""
    x0 = source_points("gaussian", n, cfg.seed + 1)  # also `python -m flowviz figure meanflow`
    return one_step_jumps(exact_field(cfg), x0, 12 * substeps(cfg), N_EVAL // 2)


def intro() -> None:
    st.title("MeanFlow: learn the average, jump once")
    st.caption("Article §6–6.2 · Geng et al. 2025, *Mean Flows for One-step Generative "
               "Modeling* · time runs from noise t = 0 to data t = 1, and r ≥ t")
    st.markdown("Flow matching learns the tangent $v(x_t, t)$ of a curved trajectory. MeanFlow "
                "learns the **average** velocity over an interval, the chord:")
    st.latex(r"\begin{aligned}u(x_t,t,r)&=\frac{1}{r-t}\int_t^r v(x_\tau,\tau)\,d\tau\\"
             r"x_r&=x_t+(r-t)\,u(x_t,t,r)\end{aligned}")


def tangent_or_chord(cfg, model, dev) -> dict | None:
    """Section 1 on the exact flow from a chosen start point (None without a Gaussian source)."""
    st.header("1 · The tangent v and the chord u")
    c1, c2, c3 = st.columns([1, 1, 2])
    px = c1.slider("Start x0: x", -3.0, 3.0, -1.5, 0.1, key="mf_px", bind="query-params")
    py = c2.slider("Start x0: y", -3.0, 3.0, -2.0, 0.1, key="mf_py", bind="query-params")
    t, r = c3.slider("Interval [t, r]", 0.0, 1.0, (0.0, 1.0), 0.05, key="mf_tr",
                     bind="query-params", help="x_t and x_r: the trajectory at these times.")
    if cfg.source != "gaussian":
        st.info("The exact field needs the Gaussian source N(0, I): pick it in the sidebar to "
                "see the exact mean velocity. Training works for any source.")
        return None
    ex = exact_mean(cfg, px, py)
    i, j = round(t * GRID), round(r * GRID)
    row = ends = None
    if model is not None:
        row, ends = along_path(model, ex["traj"], ex["ts"], i, dev)
    c1, c2, c3 = st.columns([4, 4, 2])  # the metrics' labels in full, also when presenting
    with c1:
        chart(mviz.chord_fig(ex["traj"], ex["ts"], i, j, ex["v"][i],
                             data_points(cfg.target, cfg.n_data, cfg.seed, cfg.upload)[:600],
                             ends, title=f"Exact flow from ({px:.1f}, {py:.1f})", lim=LIM,
                             height=410), "mf-chord")
    with c2:
        chart(mviz.running_mean_fig(ex["v"], ex["u"][i], i, j, row, height=410,
                                    title="Velocity space: u, running mean of v"),
              "mf-running")
    n = tangent_and_chord(ex["v"][i], ex["u"][i, j], t, r)
    c3.metric("‖v‖, the tangent", f"{n['tangent']:.3f}")
    c3.metric("‖u‖, the chord", f"{n['chord']:.3f}")
    c3.metric("Angle v to u", f"{n['angle']:.1f}°")
    c3.metric("One v step misses", f"{n['miss']:.3f}",
              help="‖x_t + (r − t)·v − x_r‖ = (r − t)·‖v − u‖: how far one step of v lands "
                   "from x_r; the jump with u lands exactly.")
    return {"ex": ex, "i": i, "j": j, "t": t, "r": r, "model_row": row}


def one_call_question(cfg) -> None:
    choice = ask("mf-jump", "From the same noise, one network call each: which lands on the "
                 "data, a step of the exact tangent v⋆ or a jump of the exact chord u⋆?",
                 list(ANSWERS.values()), "§6")
    if choice is None:
        waiting("Commit to a prediction: the two one-call samplers are drawn here.")
        return
    jumps = exact_jumps(cfg)
    floor = noise_floor(cfg, len(jumps["x0"]))
    c1, c2 = st.columns([3, 2])
    with c1:
        p = jumps_panel(jumps, data_points(cfg.target, cfg.n_data, cfg.seed, cfg.upload)[:600],
                        LIM)
        chart(p.fig.update_layout(height=400), "mf-jumps", traj=p.traj, ts=p.ts,
              arrays=p.arrays)
    with c2:
        step, jump = jumps["ed_euler"], jumps["ed_jump"]
        st.metric("One step of v⋆: distance", format_distance(step, floor))
        st.metric("One jump of u⋆: distance", format_distance(jump, floor))
        st.caption(f"Energy distance of {len(jumps['x0'])} samples to the data (lower is "
                   f"better); two data samples differ by {jumps['ed_noise']:.4f}.")
        verdict("mf-jump", ANSWERS[jump_or_step(step, jump, jumps["ed_noise"])],
                "At t = 0 the tangent is v⋆(x, 0) = E[x1] − x, so every point lands on the "
                "data mean, while x0 + u⋆(x0, 0, 1) is the end of the flow by definition. "
                "MeanFlow learns u so the sampler can take that jump.")


def settings(cfg) -> MeanFlowRun:
    """The run the settings describe (defaults: the preset FAST_MEANFLOW on the sidebar data)."""
    d = PRESET.meanflow
    with st.expander("Training settings", icon=":material/tune:"):
        c1, c2 = st.columns(2)
        steps = c1.select_slider("Steps", [300, 500, 1000, 2000, 3000, 4000, 6000],
                                 PRESET.optim.steps, key="mf_steps")
        hidden = c2.select_slider("Width", [64, 128, 256], PRESET.model.hidden, key="mf_hidden")
        batch = c1.select_slider("Batch", [128, 256, 512, 1024], PRESET.batch, key="mf_batch")
        lr = c2.select_slider("Learning rate", [1e-3, 2e-3, 3e-3, 5e-3], PRESET.optim.lr,
                              key="mf_lr")
        frac = c1.slider("Fraction of rows with r ≠ t", 0.0, 1.0, d.frac_neq, 0.05,
                         key="mf_frac", help="0 is flow matching; Geng et al. use 25 %.")
        sampler = c2.selectbox("Time sampler", mf.TIME_SAMPLERS,
                               mf.TIME_SAMPLERS.index(d.time_sampler), key="mf_sampler",
                               format_func={"uniform": "uniform",
                                            "logit_normal": "logit-normal"}.get)
        p = c1.select_slider("Adaptive weight power p", [0.0, 0.5, 1.0, 1.5], d.p, key="mf_p",
                             help="Rows weighted 1/(‖Δ‖² + c)^p. 0: plain squared error. 1 "
                                  "(Geng et al.): robust but mode-seeking on these toys.")
        warm = c2.select_slider("Warm start: FM steps first", [0, 100, 300, 1000],
                                d.fm_warmup, key="mf_warm",
                                help="Train as flow matching (r = t) first, then the identity.")
        clip = c1.select_slider("Gradient clipping (max norm)", [0.0, 0.5, 1.0, 5.0],
                                PRESET.optim.grad_clip, key="mf_clip", help="0: off")
        ema = c2.select_slider("EMA decay", [0.0, 0.99, 0.999, 0.9995], PRESET.optim.ema,
                               key="mf_ema", help="Samples come from the EMA copy; 0: off")
        emb = c1.select_slider("Time-embedding top frequency", [5.0, 10.0, 20.0, 100.0, 1000.0],
                               PRESET.model.emb_scale, key="mf_emb",
                               help="The usual 1000 has a huge t-derivative: the JVP term of "
                                    "the target explodes.")
    return MeanFlowRun(
        source=cfg.source, target=cfg.target, n_data=cfg.n_data, data_seed=cfg.seed, h=cfg.h,
        batch=batch, model=fv.models.MLPConfig(hidden=hidden, n_scalars=2, emb_scale=emb),
        optim=fv.OptimConfig(steps=steps, lr=lr, ema=ema, grad_clip=clip, seed=cfg.seed),
        meanflow=mf.MeanFlowConfig(frac_neq=frac, time_sampler=sampler, p=p, fm_warmup=warm))


def opens_finished(key: str, run) -> bool:
    """Whether the run ``key`` is (or is about to be) a finished preset: its controls and loss
    can stay folded, the page shows what it learned."""
    known = st.session_state.get("runs", {}).get(key)
    if known is not None:
        return known.done and "preset" in known.meta
    try:
        return presets.enabled() and not st.session_state.get(f"live:{key}") \
            and presets.find(run) is not None
    except (ValueError, OSError):  # an unreadable preset: live_training says so
        return False


def train_and_jump(cfg, data_key: tuple, dev, x0, ref, floor):
    """Section 2: the identity, the run (a finished preset stays folded) and, once trained,
    the quality of k jumps of u_θ against the same net used as an ODE field."""
    st.header("2 · Learn u without the integral")
    st.markdown("Differentiate $(r-t)\\,u = \\int_t^r v\\,d\\tau$ in $t$: the **MeanFlow "
                "identity** (§6.1) needs no integral, only one JVP of the network, and the "
                "network regresses on its right-hand side (stop-gradient, $v = x_1 - x_0$):")
    left, right = st.columns(2, gap="large")
    with left:
        st.latex(r"\begin{aligned}u(x_t,t,r)&=v(x_t,t)-(t-r)\,\tfrac{d}{dt}u(x_t,t,r)\\"
                 r"\tfrac{d}{dt}u&=\partial_x u\;v+\partial_t u\end{aligned}")
        run = settings(cfg)
        key = run_key("mf", run, cfg.upload, cfg.device)
        folded = opens_finished(key, run)
        with st.expander("The training run: loss and controls", expanded=not folded,
                         icon=":material/model_training:"):
            state = live_training(key, lambda: build_meanflow(run, dev, uploaded_points()),
                                  chunk=50, meta={"label": f"MeanFlow, w{run.model.hidden}",
                                                  "data": data_key, "page": "meanflow"},
                                  loss_keys=("mse_fm", "mse_mean"), preset=run)
            st.caption("mse_fm: rows with r = t (flow matching); mse_mean: rows with r > t "
                       "(the identity), both before the adaptive weight.")
        reproduce_box("meanflow", "mf_", {"This run's config": run.to_json()})
        if state is not None and "preset" in state.meta and folded:
            st.caption(f"Opened on the preset run: {state.step} steps, {state.seconds:.0f} s "
                       "of training. Open the run above to retrain it live.")
    done = state is not None and state.step > 0 and not training_active(key)
    with right:
        out = one_jump_of_the_model(cfg, key, state, x0, ref, floor) if done else None
        if not done:
            st.info("Train the model (left): the quality of its jumps appears here when "
                    "training finishes or is paused.")
    return run, key, state, out


def one_jump_of_the_model(cfg, key, state, x0, ref, floor) -> dict:
    """k jumps of the trained u_θ against the same net as an ODE field (once per step)."""
    res, rk = results("mf_results"), (key, state.step)
    if rk not in res:
        res[rk] = evaluate(state.sampler_model.eval(), x0, ref)
    out = res[rk]
    curves = {"MeanFlow: k jumps of u_θ": out["jumps"],
              "MeanFlow net as v_θ, Euler": out["as_velocity"]}
    if cfg.source == "gaussian":
        curves["exact v*, Euler"] = exact_nfe_curve(cfg)
    chart(fv.viz.quality_vs_nfe_fig(curves, title="Energy distance to the data vs NFE",
                                    height=400, floor=floor), "mf-nfe")
    k1, k2 = st.columns(2)
    k1.metric("u_θ, one jump", format_distance(out["jumps"][1][0], floor))
    if cfg.source == "gaussian":
        k2.metric("Exact v⋆, one step", format_distance(exact_nfe_curve(cfg)[1][0], floor),
                  help="The best any instantaneous-velocity model can do in one step.")
    else:
        k2.metric("v_θ, one Euler step", format_distance(out["as_velocity"][1][0], floor))
    st.caption(f"{N_EVAL} samples against {N_EVAL} data samples. The same weights as an ODE "
               "field v_θ(x, t) = u_θ(x, t, t) need many steps; as a jump, one.")
    return out


intro()
cfg = page_settings()
dev = device(cfg)
data_key = (cfg.source, cfg.target, cfg.n_data, cfg.seed, cfg.h, cfg.upload)
trained = [s for s in st.session_state.get("runs", {}).values()
           if s.meta.get("page") == "meanflow" and s.meta.get("data") == data_key and s.step > 0]
point = tangent_or_chord(cfg, trained[-1].sampler_model.eval() if trained else None, dev)
if point is not None:
    one_call_question(cfg)
x0 = source_points(cfg.source, N_EVAL, cfg.seed + 1, cfg.upload).to(dev)
ref = (exact_field(cfg).sample_target(N_EVAL, torch.Generator().manual_seed(99))
       if cfg.source == "gaussian"
       else data_points(cfg.target, cfg.n_data, cfg.seed, cfg.upload)[:N_EVAL]).float().to(dev)
floor = noise_floor(cfg, N_EVAL)
run, key, state, out = train_and_jump(cfg, data_key, dev, x0, ref, floor)
meanflow_deeper.show(cfg, point, run, key, state, out, x0, ref, floor, data_key, dev)
