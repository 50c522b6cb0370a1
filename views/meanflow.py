"""MeanFlow: learn the mean velocity, jump in one step (article §6–6.2; Geng et al. 2025).

1. The exact flow's mean velocity u(x_t, t, r) against its instantaneous velocity v, at a chosen
   point (instant: the closed-form field integrated by RK4).
2. Train a MeanFlow model live, with its loss split into its parts and stability monitors.
3. The definition u = (1/(r - t)) ∫ v dτ checked on the trained model's own flow.
"""

from functools import partial

import numpy as np
import streamlit as st
import torch

import flowviz as fv
from flowviz.analysis import quality_vs_nfe
from flowviz.experiment import (
    FAST_MEANFLOW,
    MeanFlowRun,
    build_meanflow,
    build_shortcut,
    same_time,
)
from flowviz.methods import meanflow as mf
from flowviz.methods import shortcut as sc
from flowviz.reproduce import jumps_panel, one_step_jumps
from flowviz.viz import meanflow as mviz
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
from views.teach import notice, predict
from views.training import live_training, partner_preset, same_time_caption, training_active

LIM, GRID, N_EVAL = 3.5, 40, 2000  # (t, r) grid of 1/40; samples per quality estimate
PRESET = FAST_MEANFLOW


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
    """One Euler step of v* against one jump of u*(x0, 0, 1) (= the exact flow's end, by 12 RK4
    steps: within 0.01 of a 400-step solve at h = 0.05)."""
    x0 = source_points("gaussian", n, cfg.seed + 1)  # also `python -m flowviz figure meanflow`
    return one_step_jumps(exact_field(cfg), x0, 12 * substeps(cfg), N_EVAL // 2)


def nfe_fig(curves: dict, title: str, cfg, gaussian: bool):
    """Quality vs NFE on log axes. ED estimates are unbiased and dip below 0 within their noise:
    values under the measured noise level are drawn on its dashed line."""
    floor = noise_floor(cfg, N_EVAL) if gaussian else 1e-4
    shown = {k: (n, [max(q, floor) for q in qs]) for k, (n, qs) in curves.items()}
    fig = fv.viz.quality_vs_nfe_fig(shown, title=title)
    if gaussian:
        fig.add_scatter(x=[1, 128], y=[floor, floor], mode="lines", name="sampling noise of ED",
                        line=dict(color="gray", dash="dash", width=1.5))
    fig.update_layout(legend=dict(y=-0.25))
    return fig


def monitor(s: fv.TrainState) -> None:
    """Stability monitors drawn live under the loss: the JVP term and the loss per time bucket."""
    h = s.history
    steps = [e["step"] for e in h]
    n = s.objective.cfg.n_buckets
    c1, c2 = st.columns(2)
    with c1:
        chart(fv.viz.curves_fig({"mean": (steps, [e["jvp"] for e in h]),
                                 "max in batch": (steps, [e["jvp_max"] for e in h])},
                                "JVP term ‖(r − t)·du/dt‖ (rows with r > t)", "step", "norm",
                                logy=True, height=280, markers=False), "mf-jvp")
    with c2:
        chart(fv.viz.curves_fig({mf.bucket_label(i, n): (steps, [e[f"mse_t{i}"] for e in h])
                                 for i in range(n)}, "Loss ‖Δ‖² per time bucket", "step",
                                "‖Δ‖²", logy=True, height=280, markers=False), "mf-buckets")


st.title("MeanFlow: learn the average velocity, jump in one step")
st.caption("Article §6–6.2 · Geng et al. 2025, Mean Flows for One-step Generative Modeling · "
           "time runs from noise t = 0 to data t = 1, and r ≥ t")

cfg = page_settings()
gaussian_source = cfg.source == "gaussian"
x1_all = data_points(cfg.target, cfg.n_data, cfg.seed, cfg.upload)
x0_all = source_points(cfg.source, N_EVAL, cfg.seed + 1, cfg.upload)
runs = st.session_state.get("runs", {})

# --- 1. Mean vs instantaneous velocity ---------------------------------------------------------
st.header("1 · The mean velocity is the chord, not the tangent")
st.markdown(
    "Flow matching learns the tangent $v(x_t, t)$ of a curved trajectory: one big step along it "
    "misses. MeanFlow learns the **average** velocity over an interval, i.e. the chord:")
st.latex(r"u(x_t,t,r)=\frac{1}{r-t}\int_t^r v(x_\tau,\tau)\,d\tau,\qquad "
         r"x_r=x_t+(r-t)\,u(x_t,t,r),\qquad u(x_t,t,t)=v(x_t,t).")
c1, c2, c3 = st.columns([1, 1, 2])
px = c1.slider("Start x0: x", -3.0, 3.0, -1.5, 0.1, key="mf_px", bind="query-params")
py = c2.slider("Start x0: y", -3.0, 3.0, -2.0, 0.1, key="mf_py", bind="query-params")
t, r = c3.slider("Interval [t, r]", 0.0, 1.0, (0.0, 1.0), 0.05, key="mf_tr", bind="query-params",
                 help="x_t and x_r are the points of the trajectory at these times.")
i, j = round(t * GRID), round(r * GRID)

# the trained model of this page on this data, if any (drawn over the exact curves)
data_key = (cfg.source, cfg.target, cfg.n_data, cfg.seed, cfg.h, cfg.upload)
trained = [s_ for s_ in runs.values() if s_.meta.get("page") == "meanflow"
           and s_.meta.get("data") == data_key and s_.step > 0]
model = trained[-1].sampler_model.eval() if trained else None

if not gaussian_source:
    st.info("The exact field needs the Gaussian source N(0, I): pick it in the sidebar to see the "
            "exact mean velocity. Training and the identity check below work for any source.")
else:
    ex = exact_mean(cfg, px, py)
    ts, traj, v, u = ex["ts"], ex["traj"], ex["v"], ex["u"]
    model_ends = model_row = None
    if model is not None:
        dev = next(model.parameters()).device
        with torch.no_grad():
            rr = ts[i:].to(dev)
            xt = traj[i].to(dev).expand(len(rr), 2)
            model_row = torch.full_like(traj, float("nan"))
            model_row[i:] = model(xt, torch.full_like(rr, ts[i].item()), rr).cpu()
        model_ends = traj[i] + (ts - ts[i])[:, None] * model_row
    c1, c2 = st.columns(2)
    with c1:
        chart(mviz.chord_fig(traj, ts, i, j, v[i], x1_all[:600], model_ends,
                             title=f"Exact flow from x0 = ({px:.1f}, {py:.1f}): t = {t:.2f}, "
                                   f"r = {r:.2f}", lim=LIM), "mf-chord")
    with c2:
        chart(mviz.running_mean_fig(v, u[i], i, j, model_row,
                                    title="Velocity space: u is the running mean of v"),
              "mf-running")
    k1, k2, k3, k4 = st.columns(4)
    vt, ut = v[i], u[i, j]
    cos = float(vt @ ut / (vt.norm() * ut.norm()).clamp_min(1e-12))
    k1.metric("‖v(x_t, t)‖ (tangent)", f"{vt.norm():.3f}")
    k2.metric("‖u(x_t, t, r)‖ (chord)", f"{ut.norm():.3f}")
    k3.metric("Angle between v and u", f"{np.degrees(np.arccos(np.clip(cos, -1, 1))):.1f}°")
    k4.metric("One step of v misses x_r by", f"{((r - t) * (vt - ut)).norm():.3f}",
              help="‖x_t + (r − t)·v − x_r‖ = (r − t)·‖v − u‖; the jump with u lands exactly.")
    c1, c2 = st.columns(2)
    with c1:
        gap = (u - v[:, None]).norm(dim=-1)
        chart(mviz.tr_map_fig(ts, gap, "‖u(x_t, t, r) − v(x_t, t)‖ along this trajectory",
                              "‖u − v‖", mark=(t, r)), "mf-trmap")
        st.caption("Zero on the diagonal r = t (u = v there) and growing with the interval where "
                   "the path bends: that gap is what a single step of v gets wrong.")
    with c2:
        jj = exact_jumps(cfg)
        p = jumps_panel(jj, x1_all[:600], LIM)
        chart(p.fig, "mf-jumps", traj=p.traj, ts=p.ts, arrays=p.arrays)
        st.caption(f"Energy distance to the data: one step of v* = {jj['ed_euler']:.3f} "
                   f"(v*(x, 0) = E[x1] − x, so every point lands on the data mean); one jump "
                   f"of u* = {jj['ed_jump']:.4f}, as close as {len(jj['x0'])} fresh data "
                   f"points are ({jj['ed_noise']:.4f}). u*(x0, 0, 1) is the exact flow's "
                   "displacement, measured by RK4.")
    notice("The tangent v points where the path is heading *now*; the chord u points where it "
           "will *be*. Move t and r: u equals v on the diagonal and drifts away from it as the "
           "interval grows along a bending path, and only u makes one big step land.", "§6, §6.1")
    ed_e, ed_j, ed_n = jj["ed_euler"], jj["ed_jump"], jj["ed_noise"]
    predict("mf-jump", "From the same noise, one network call each: which single step lands on "
            "the data, one step of the instantaneous velocity x0 + v*(x0, 0), or one jump of the "
            "mean velocity x0 + u*(x0, 0, 1)?",
            ["One step of v*", "One jump of u*", "Both equally well"],
            "Both equally well" if abs(ed_e - ed_j) < 2 * abs(ed_n) + 1e-3
            else "One jump of u*" if ed_j < ed_e else "One step of v*",
            f"Energy distance to the data, measured above: one step of v* {ed_e:.3f}, one jump "
            f"of u* {ed_j:.4f} (two independent data samples differ by {ed_n:.4f}). At t = 0 "
            "the tangent is v*(x, 0) = E[x1] − x, so every point lands on the data mean, while "
            "u*(x0, 0, 1) = x1 − x0 along the flow is the whole displacement: x0 + u* is the "
            "flow's end by definition. MeanFlow learns u so the sampler can take that jump.",
            "§6")

# --- 2. Train live -----------------------------------------------------------------------------
st.header("2 · Train u_θ(x, t, r) live")
st.markdown(
    "Differentiating $(r-t)\\,u = \\int_t^r v\\,d\\tau$ in $t$ gives the **MeanFlow identity** "
    "(§6.1), which needs no integral:")
st.latex(r"u(x_t,t,r)=v(x_t,t)+(r-t)\,\frac{d}{dt}u(x_t,t,r),\qquad "
         r"\frac{d}{dt}u=\partial_x u\;v+\partial_t u\quad(\text{one JVP along }(v,1,0)).")
st.markdown(
    "The network regresses on $\\mathrm{sg}\\big(v + (r-t)\\,\\tfrac{d}{dt}u_\\theta\\big)$ with "
    "the conditional velocity $v = x_1 - x_0$; rows with $r = t$ are plain flow matching. "
    "Geng et al. weight each row by $1/(\\|\\Delta\\|^2 + c)^p$ with $p = 1$ and draw $t, r$ "
    "logit-normal; on these 2-D toys the preset uses $p = 0$ and uniform times instead "
    "(try theirs: section 3 shows what changes).")
c1, c2, c3, c4 = st.columns(4)
steps = c1.select_slider("Steps", [300, 500, 1000, 2000, 3000, 4000, 6000], PRESET.optim.steps,
                         key="mf_steps")
hidden = c2.select_slider("Width", [64, 128, 256], PRESET.model.hidden, key="mf_hidden")
batch = c3.select_slider("Batch", [128, 256, 512, 1024], PRESET.batch, key="mf_batch")
lr = c4.select_slider("Learning rate", [1e-3, 2e-3, 3e-3, 5e-3], PRESET.optim.lr, key="mf_lr")
c1, c2, c3, c4 = st.columns(4)
d = PRESET.meanflow
frac = c1.slider("Fraction of rows with r ≠ t", 0.0, 1.0, d.frac_neq, 0.05, key="mf_frac",
                 help="0 is flow matching; Geng et al. use 25 %.")
sampler = c2.selectbox("Time sampler", mf.TIME_SAMPLERS, mf.TIME_SAMPLERS.index(d.time_sampler),
                       key="mf_sampler", format_func={"uniform": "uniform",
                                                      "logit_normal": "logit-normal"}.get)
p = c3.select_slider("Adaptive weight power p", [0.0, 0.5, 1.0, 1.5], d.p, key="mf_p",
                     help="0: plain squared error (its minimiser is the conditional mean). "
                          "1 (Geng et al.): every row counts about equally; robust to noisy "
                          "targets but mode-seeking, which biases v = u(x, t, t).")
warm = c4.select_slider("Warm start: FM steps first", [0, 100, 300, 1000], d.fm_warmup,
                        key="mf_warm", help="Train the same network as flow matching (r = t) "
                                            "first, then switch the identity on.")
with st.expander("Stability remedies and the time embedding"):
    c1, c2, c3 = st.columns(3)
    clip = c1.select_slider("Gradient clipping (max norm)", [0.0, 0.5, 1.0, 5.0],
                            PRESET.optim.grad_clip, key="mf_clip", help="0: off")
    ema = c2.select_slider("EMA decay", [0.0, 0.99, 0.999, 0.9995], PRESET.optim.ema,
                           key="mf_ema", help="Samples come from the EMA copy; 0: off")
    emb = c3.select_slider("Time-embedding top frequency", [5.0, 10.0, 20.0, 100.0, 1000.0],
                           PRESET.model.emb_scale, key="mf_emb",
                           help="The usual diffusion embedding uses 1000: its t-derivative is "
                                "huge, so the JVP term of the target explodes.")
run = MeanFlowRun(
    source=cfg.source, target=cfg.target, n_data=cfg.n_data, data_seed=cfg.seed, h=cfg.h,
    batch=batch, model=fv.models.MLPConfig(hidden=hidden, n_scalars=2, emb_scale=emb),
    optim=fv.OptimConfig(steps=steps, lr=lr, ema=ema, grad_clip=clip, seed=cfg.seed),
    meanflow=mf.MeanFlowConfig(frac_neq=frac, time_sampler=sampler, p=p, fm_warmup=warm))
key = run_key("mf", run, cfg.upload, cfg.device)
dev = device(cfg)
state = live_training(key, lambda: build_meanflow(run, dev, uploaded_points()), chunk=50,
                      meta={"label": f"MeanFlow, w{hidden}", "data": data_key, "page": "meanflow"},
                      loss_keys=("mse_fm", "mse_mean"), monitor=monitor, preset=run)
st.caption("Loss parts: mse_fm = ‖u_θ − v‖² on rows with r = t (flow matching), mse_mean = "
           "‖u_θ − u_tgt‖² on rows with r > t (the identity), both before the adaptive weight.")
reproduce_box("meanflow", "mf_", {"This run's config": run.to_json()})

if state is not None and state.step > 0 and training_active(key):
    st.caption("The samples, quality-vs-NFE curves and the identity check appear when training "
               "finishes or is paused.")
elif state is not None and state.step > 0:
    model = state.sampler_model.eval()
    res = results("mf_results")
    rk = (key, state.step)
    x0e = x0_all.to(dev)
    ref = (exact_field(cfg).sample_target(N_EVAL, torch.Generator().manual_seed(99))
           if gaussian_source else x1_all[:N_EVAL]).to(dev)
    if rk not in res:
        with torch.no_grad():
            res[rk] = {"jump": mf.sample(model, x0e).x.cpu(),
                       "mf": quality_vs_nfe(None, x0e, ref, sample=mf.sampler(model)),
                       "v": quality_vs_nfe(model.velocity, x0e, ref),
                       "id": mf.identity_check(model, x0e[:256]),
                       "one": mf.one_step_error(model, x0e[:500])}
    out = res[rk]
    c1, c2 = st.columns(2)
    with c1:
        q1, v1 = out["mf"][1][0], out["v"][1][0]
        chart(mviz.jumps_fig(x0_all, {"one jump of u_θ: x0 + u_θ(x0, 0, 1)": out["jump"]},
                             x1_all[:600], f"One network call, {state.step} steps of training",
                             lim=LIM), "mf-model-jumps")
        k1, k2 = st.columns(2)
        k1.metric("Energy distance, 1 jump of u_θ", f"{q1:.4f}")
        if gaussian_source:
            k2.metric("1 Euler step of the exact v*", f"{exact_nfe_curve(cfg)[1][0]:.4f}",
                      help="The best any instantaneous-velocity model can do in one step.")
        else:
            k2.metric("1 Euler step of v_θ = u_θ(x, t, t)", f"{v1:.4f}")
    with c2:
        curves = {"MeanFlow: k jumps of u_θ": out["mf"],
                  "same network as v_θ, Euler": out["v"]}
        if gaussian_source:
            curves["exact v*, Euler"] = exact_nfe_curve(cfg)
        chart(nfe_fig(curves, "Quality vs NFE (energy distance to the data, lower is better)",
                      cfg, gaussian_source), "mf-nfe")
        st.caption(f"{N_EVAL} samples against {N_EVAL} fresh data samples. The same weights "
                   "used as an ODE field v_θ need many steps; used as a jump they need one.")

    # --- 3. The identity checked on the model ------------------------------------------------
    st.header("3 · Is u_θ really the average of its own v_θ?")
    st.markdown(
        "Training only enforced the identity on noisy pairs. Check the definition directly: "
        "integrate the model's own instantaneous field $v_\\theta(x,t)=u_\\theta(x,t,t)$ with "
        "RK4 from 256 noise points and compare, for every pair $t<r$ of a 1/20 grid, the "
        "network's answer $u_\\theta(x_t,t,r)$ with the average "
        "$\\frac{1}{r-t}\\int_t^r v_\\theta\\,d\\tau = \\frac{x_r-x_t}{r-t}$ along that path.")
    idc, one = out["id"], out["one"]
    c1, c2 = st.columns(2)
    with c1:
        rel = idc["rel"].cpu()
        chart(mviz.tr_map_fig(idc["ts"].cpu(), rel, "Relative error ‖u_θ − ∫v_θ/(r − t)‖ / "
                              "‖∫v_θ/(r − t)‖", "rel. error", mark=(t, r), colorscale="Magma"),
              "mf-identity")
        finite = rel[~torch.isnan(rel)]
        st.caption(f"Mean over the {finite.numel()} pairs: {100 * finite.mean():.1f} %; "
                   f"at (t, r) = (0, 1): {100 * rel[0, -1]:.1f} %.")
    with c2:
        e = one["err"].cpu()
        chart(mviz.error_points_fig(x0_all[:500], e, "Per start point: ‖one jump − end of "
                                    "its own flow‖", "gap", lim=LIM), "mf-identity-points")
        st.caption(f"Median gap {e.median():.3f}, 90th percentile {e.quantile(0.9):.3f}. "
                   "Where the noise splits between modes the jump is a compromise.")

# --- 4. MeanFlow vs Shortcut -------------------------------------------------------------------
st.header("4 · MeanFlow vs Shortcut: one average, two ways to learn it")
st.markdown(
    "With $r = t + d$, Shortcut's $s(x_t, t, d)$ (§5) and MeanFlow's $u(x_t, t, t + d)$ are the "
    "same quantity, $\\frac1d\\int_t^{t+d} v\\,d\\tau$ (§6.3). MeanFlow learns it from the "
    "identity, a derivative (one JVP per row); Shortcut from self-consistency, two half steps of "
    "itself (a learned quadrature, §6.3.1). Here a Shortcut model trains on the same data, with "
    "the same network, for the same training time as the MeanFlow run above.")
if state is None or not state.done or state.status == "nan" or training_active(key):
    st.info("Finish the MeanFlow run above first: the Shortcut model gets its training time.")
    st.stop()
sc_key = f"sc-vs:{key}"


def build_sc() -> fv.TrainState:
    """The Shortcut run beside this MeanFlow run (experiment.same_time_partner): the same data,
    network and optimiser, as many steps as take the time of the MeanFlow run's steps (both
    step costs timed here, interleaved)."""
    sc_run, cost = same_time(run, n=15, reps=3, device=dev, uploaded=uploaded_points())
    sc_state = build_shortcut(sc_run, dev, uploaded_points())
    sc_state.meta["cost"] = cost
    return sc_state


sc_state = live_training(sc_key, build_sc, chunk=50, loss_keys=("loss", "L_FM", "L_SC"),
                         preset=partner_preset(key),
                         start="Train Shortcut (same time)",
                         meta={"label": "Shortcut, same time", "data": data_key})
if sc_state is None or sc_state.step == 0 or training_active(sc_key):
    st.stop()
s_model = sc_state.sampler_model.eval()


def s_as_u(x, t, r):
    """Shortcut's s(x, t, d) read as a mean velocity: u(x, t, r) = s(x, t, r - t)."""
    return s_model(x, t, r - t)


rk = (sc_key, sc_state.step, key, state.step)
if rk not in res:
    with torch.no_grad():  # built whole, then stored (a stored entry is not updated later)
        entry = {"sc": quality_vs_nfe(None, x0e, ref, sample=partial(sc.sample, s_model))}
        if gaussian_source:
            entry["d"] = mf.error_vs_interval(
                {"MeanFlow u_θ(x, t, t + d)": model, "Shortcut s_θ(x, t, d)": s_as_u},
                exact_field(cfg), x0_all[:200].to(dev), 20, substeps(cfg))
        res[rk] = entry
cmp = res[rk]
c1, c2 = st.columns(2)
with c1:
    curves = {f"MeanFlow: k jumps ({state.seconds:.0f} s, {state.step} steps)": out["mf"],
              f"Shortcut: k steps ({sc_state.seconds:.0f} s, {sc_state.step} steps)": cmp["sc"]}
    chart(nfe_fig(curves, "Same data, network and training time", cfg, gaussian_source),
          "mf-vs-sc-nfe")
    same_time_caption(sc_state, "MeanFlow", "Shortcut", state.cfg.steps)
with c2:
    if "d" in cmp:
        ds, errs = cmp["d"]
        fig = fv.viz.curves_fig({k: (ds, v) for k, v in errs.items()}, "Error of the interval "
                                "average against the exact u*", "interval length d = r − t",
                                "mean ‖· − u*‖", height=380)
        fig.update_layout(legend=dict(y=-0.25))
        chart(fig, "mf-vs-sc-d")
        st.caption("Over 200 exact trajectories and every pair of times on a 1/20 grid; u* "
                   "from the closed-form field integrated by RK4. Shortcut trains d only on "
                   "powers of two (1, 1/2, 1/4, …): in between it interpolates.")
    else:
        st.info("The error against the exact average needs the Gaussian source.")
if gaussian_source:
    with torch.no_grad():
        rr = ts[i:].to(dev)
        xt = traj[i].to(dev).expand(len(rr), 2)
        s_row = torch.full_like(traj, float("nan"))
        s_row[i:] = s_as_u(xt, torch.full_like(rr, ts[i].item()), rr).cpu()
    chart(mviz.running_mean_fig(v, u[i], i, j, model_row, f"At the chosen point (section 1), "
                                f"t = {t:.2f}: u_θ(x_t, t, t + d) beside s_θ(x_t, t, d)",
                                extra={"Shortcut s_θ(x_t, t, r′ − t)": s_row}), "mf-vs-sc-point")
