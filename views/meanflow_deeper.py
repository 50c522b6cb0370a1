"""The MeanFlow page's "Go deeper" sections (article §6.1–6.3), each computed only when chosen:
the (t, r) map of the gap between u and v, stability monitors, the identity checked on the
model's own flow, MeanFlow beside Shortcut for the same training time, and the loss per time
bucket."""

import streamlit as st
import torch

import flowviz as fv
from flowviz.experiment import build_shortcut, same_time
from flowviz.meanflow_lesson import against_shortcut, along_path, shortcut_as_mean
from flowviz.methods import meanflow as mf
from flowviz.viz import meanflow as mviz
from views.cache import exact_field
from views.charts import chart
from views.results import results
from views.state import uploaded_points
from views.teach import deeper
from views.training import live_training, partner_preset, same_time_caption, training_active

LIM = 3.5
TR_MAP, MONITORS, IDENTITY, VERSUS, BUCKETS = (
    "(t, r) map", "Stability monitors", "Identity on its own flow", "MeanFlow vs Shortcut",
    "Loss per time bucket")
TRAIN_FIRST = "Train the MeanFlow model in section 2 first (or let it finish)."


def show(cfg, point, run, key, state, out, x0, ref, floor, data_key, dev) -> None:
    pick = deeper("mf_deeper", [TR_MAP, MONITORS, IDENTITY, VERSUS, BUCKETS])
    trained = state is not None and state.step > 0
    if pick == TR_MAP:
        tr_map(point)
    elif pick in (MONITORS, BUCKETS) and trained:
        (monitors if pick == MONITORS else buckets)(state)
    elif pick == IDENTITY and out is not None:
        identity(out, point, x0)
    elif pick == VERSUS and out is not None and state.done and state.status != "nan":
        versus(cfg, point, run, key, state, out, x0, ref, floor, data_key, dev)
    elif pick is not None and pick != TR_MAP:
        st.info(TRAIN_FIRST)


def tr_map(point) -> None:
    st.subheader("Where u and v differ: the (t, r) map")
    if point is None:
        st.info("The exact mean velocity needs the Gaussian source.")
        return
    ex = point["ex"]
    gap = (ex["u"] - ex["v"][:, None]).norm(dim=-1)
    c1, c2 = st.columns([3, 2])
    with c1:
        chart(mviz.tr_map_fig(ex["ts"], gap, "‖u(x_t, t, r) − v(x_t, t)‖ along the trajectory "
                              "of section 1", "‖u − v‖", mark=(point["t"], point["r"])),
              "mf-trmap")
    c2.markdown("Zero on the diagonal $r = t$ ($u = v$ there) and growing with the interval "
                "where the path bends: that gap is what one step of $v$ gets wrong. The × marks "
                "the interval chosen in section 1.")


def monitors(state) -> None:
    st.subheader("Stability monitors")
    st.markdown("The target holds $(r-t)\\,\\tfrac{d}{dt}u_\\theta$, a JVP through the network. "
                "When it grows (a high-frequency time embedding, a large learning rate) the "
                "target explodes: gradient clipping, EMA and a warm start are the remedies "
                "under Training settings.")
    h = state.history
    steps = [e["step"] for e in h]
    chart(fv.viz.curves_fig({"mean over rows": (steps, [e["jvp"] for e in h]),
                             "max in batch": (steps, [e["jvp_max"] for e in h])},
                            "JVP term ‖(r − t)·du/dt‖ on rows with r > t", "step", "norm",
                            logy=True, height=340, markers=False), "mf-jvp")


def buckets(state) -> None:
    st.subheader("Loss per time bucket")
    n = state.objective.cfg.n_buckets
    h = state.history
    losses = {mf.bucket_label(i, n): [e[f"mse_t{i}"] for e in h] for i in range(n)}
    chart(mviz.bucket_loss_fig([e["step"] for e in h], losses, "‖Δ‖² by the row's time t"),
          "mf-buckets")
    st.caption("Each line: the squared error of the rows whose t falls in that bucket. A bucket "
               "that stays high is a part of the flow the model has not learned.")


def identity(out: dict, point, x0) -> None:
    st.subheader("Is u_θ really the average of its own v_θ?")
    st.markdown("Integrate the model's own field $v_\\theta(x,t)=u_\\theta(x,t,t)$ with RK4 from "
                "256 noise points and compare, for every pair $t<r$ of a 1/20 grid, "
                "$u_\\theta(x_t,t,r)$ with $\\frac{x_r-x_t}{r-t}$ along that path.")
    idc, e = out["identity"], out["own_flow"]["err"].cpu()
    rel = idc["rel"].cpu()
    c1, c2 = st.columns(2)
    with c1:
        mark = (point["t"], point["r"]) if point is not None else None
        chart(mviz.tr_map_fig(idc["ts"].cpu(), rel, "Relative error of u_θ against its own "
                              "average", "rel. error", mark=mark, colorscale="Magma"),
              "mf-identity")
        finite = rel[~torch.isnan(rel)]
        st.caption(f"Mean over the {finite.numel()} pairs: {100 * finite.mean():.1f} %; at "
                   f"(t, r) = (0, 1): {100 * rel[0, -1]:.1f} %.")
    with c2:
        chart(mviz.error_points_fig(x0[:500].cpu(), e, "Per start point: one jump against the "
                                    "end of its own flow", "gap", lim=LIM), "mf-identity-points")
        st.caption(f"Median gap {e.median():.3f}, 90th percentile {e.quantile(0.9):.3f}. Where "
                   "the noise splits between modes the jump is a compromise.")


def versus(cfg, point, run, key, state, out, x0, ref, floor, data_key, dev) -> None:
    st.subheader("MeanFlow vs Shortcut: one average, two ways to learn it")
    st.markdown("With $r = t + d$, Shortcut's $s(x_t, t, d)$ and MeanFlow's $u(x_t, t, t + d)$ "
                "are the same average (§6.3). MeanFlow learns it from a derivative (one JVP); "
                "Shortcut from two half steps of itself. Here a Shortcut model trains on the "
                "same data and network for the same time as the MeanFlow run.")
    sc_key = f"sc-vs:{key}"

    def build() -> fv.TrainState:
        sc_run, cost = same_time(run, n=15, reps=3, device=dev, uploaded=uploaded_points())
        sc_state = build_shortcut(sc_run, dev, uploaded_points())
        sc_state.meta["cost"] = cost
        return sc_state

    sc_state = live_training(sc_key, build, chunk=50, loss_keys=("loss", "L_FM", "L_SC"),
                             preset=partner_preset(key), start="Train Shortcut (same time)",
                             meta={"label": "Shortcut, same time", "data": data_key})
    if sc_state is None or sc_state.step == 0 or training_active(sc_key):
        return
    same_time_caption(sc_state, "MeanFlow", "Shortcut", state.cfg.steps)
    s_model, gaussian = sc_state.sampler_model.eval(), cfg.source == "gaussian"
    res, rk = results("mf_results"), (sc_key, sc_state.step, key, state.step)
    if rk not in res:
        res[rk] = against_shortcut(state.sampler_model.eval(), s_model, x0, ref,
                                   exact_field(cfg) if gaussian else None, x0[:200],
                                   1 if cfg.h > 0 else 5)
    cmp = res[rk]
    c1, c2 = st.columns(2)
    with c1:
        curves = {f"MeanFlow: k jumps ({state.seconds:.0f} s)": out["jumps"],
                  f"Shortcut: k steps ({sc_state.seconds:.0f} s)": cmp["shortcut"]}
        chart(fv.viz.quality_vs_nfe_fig(curves, title="Same data, network and training time",
                                        height=400, floor=floor), "mf-vs-sc-nfe")
    with c2:
        if "by_interval" in cmp:
            ds, errs = cmp["by_interval"]
            chart(fv.viz.curves_fig({k: (ds, v) for k, v in errs.items()}, "Error of the "
                                    "interval average against the exact u*",
                                    "interval length d = r − t", "mean ‖· − u*‖", height=400),
                  "mf-vs-sc-d")
            st.caption("Over 200 exact trajectories and every pair of times on a 1/20 grid. "
                       "Shortcut trains d only on powers of two: in between it interpolates.")
        else:
            st.info("The error against the exact average needs the Gaussian source.")
    if point is not None:
        ex, i, j = point["ex"], point["i"], point["j"]
        s_row, _ = along_path(shortcut_as_mean(s_model), ex["traj"], ex["ts"], i, dev)
        chart(mviz.running_mean_fig(ex["v"], ex["u"][i], i, j, point["model_row"],
                                    f"At the point of section 1, t = {point['t']:.2f}: "
                                    "u_θ(x_t, t, t + d) beside s_θ(x_t, t, d)",
                                    extra={"Shortcut s_θ(x_t, t, r′ − t)": s_row}),
              "mf-vs-sc-point")
