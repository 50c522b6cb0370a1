"""Straight pairs, curved flow (article §1.2, §2, §2.1).

Independent (x0, x1) pairs are joined by straight lines that cross; the marginal field
v*(x, t) = E[x1 - x0 | x_t = x] averages the directions of all lines through x, so its
trajectories bend. Then a 1-rectified flow trained live is compared with the exact field.
"""

import numpy as np
import streamlit as st
import torch

import flowviz as fv
from flowviz.analysis import field_on, grid, path_metrics, quality_vs_nfe
from flowviz.reproduce import field_section, pairs_section
from views.cache import data_points, exact_field, exact_nfe_curve, source_points
from views.charts import chart
from views.reproduce import reproduce_box
from views.results import results
from views.state import device, page_settings, run_key, uploaded_points
from views.teach import notice, predict
from views.training import live_training

LIM, GRID, N_PAIRS, N_PATHS = 4.5, 21, 150, 200


st.title("Straight pairs, curved flow")
st.caption("Article §1.2, §2 and §2.1 · rectified flow: x_t = (1 − t) x0 + t x1, target x1 − x0")

cfg = page_settings()
gaussian_source = cfg.source == "gaussian"
x1_all = data_points(cfg.target, cfg.n_data, cfg.seed, cfg.upload)
x0_all = source_points(cfg.source, len(x1_all), cfg.seed + 1, cfg.upload)

# --- 1. Pair lines -----------------------------------------------------------------------------
st.header("1 · Every pair is a straight line, and the lines cross")
st.markdown(
    "Training pairs $(x_0, x_1)$ are drawn independently, so each one is a straight segment "
    "with velocity $x_1 - x_0$. Many segments pass through the same place in different "
    "directions. Re-pairing the same points by optimal transport on the batch (right) removes "
    "most crossings.")
n = min(N_PAIRS, len(x0_all), len(x1_all))
sec1 = pairs_section(x0_all, x1_all, cfg.seed, N_PAIRS, LIM)  # also `python -m flowviz figure`
cm = {name: m for name, (_, m) in sec1.items()}  # coupling metrics, for the question below
for col, (name, (p, m)) in zip(st.columns(2), sec1.items(), strict=True):
    with col:
        chart(p.fig, f"pairs-{name.lower()}", arrays=p.arrays)
        k1, k2 = st.columns(2)
        k1.metric("Crossing pairs of lines", f"{100 * m['crossing_fraction']:.1f} %")
        k2.metric("Transport cost E‖x1 − x0‖²", f"{m['transport_cost']:.2f}")
ci, co = (100 * cm[k]["crossing_fraction"] for k in ("Independent", "Minibatch-OT"))
ti, to = (cm[k]["transport_cost"] for k in ("Independent", "Minibatch-OT"))
notice("Each pair is a straight segment, yet many segments pass through the same place in "
       "different directions. A network sees only x_t and t, so at a crossing it must learn the "
       "average direction: that average (section 2) is what bends the flow.", "§2, §2.1")
predict("sp-ot", "Re-pair the **same** points by optimal transport on the batch (minimising the "
        "total squared length). What happens to the fraction of crossing pair lines?",
        ["It drops a lot", "It stays about the same", "It rises"],
        "It drops a lot" if co < 0.5 * ci else "It rises" if co > 1.2 * ci
        else "It stays about the same",
        f"Measured on these {n} pairs: {ci:.1f} % of pairs of lines cross when paired "
        f"independently, {co:.1f} % after minibatch OT; the mean squared length E‖x1 − x0‖² "
        f"falls from {ti:.2f} to {to:.2f}. Long lines that cut across each other are exactly "
        "what OT shortens, so fewer directions meet at a point and the averaged field bends "
        "less (train both couplings in section 4 to see it).", "§2.1")

# --- 2. The exact field ----------------------------------------------------------------------
st.header("2 · Averaging the directions bends the flow")
st.latex(r"v^\star(x,t)=\mathbb E\,[\,x_1-x_0 \mid x_t=x\,]"
         r"=\sum_i w_i(x,t)\,\big(x_1^{(i)}-x_0^{(i)}\big),\qquad "
         r"w_i\propto \exp\!\Big(-\tfrac{\|x-t\,y_i\|^2}{2\,((1-t)^2+t^2h^2)}\Big)")
t = st.slider("Time t", 0.0, 0.95, 0.5, 0.05, key="sp_t", bind="query-params",
              help="The field and the variance map are drawn at this time.")
if not gaussian_source:
    st.info("The closed-form field needs the Gaussian source N(0, I): pick it in the sidebar to "
            "see the exact field, the probe and the comparison. Training below works for any "
            "source.")
else:
    field = exact_field(cfg)
    field_panel, traj_panel, paths = field_section(field, x0_all[:N_PATHS], t, LIM, GRID)
    c1, c2 = st.columns(2)
    with c1:
        chart(field_panel.fig, "field", arrays=field_panel.arrays)
        st.caption("Colour: log₁₀ tr Cov[x1 − x0 | x_t = x], how much the directions of the "
                   "lines through x disagree. Where it is large, v* is an average of "
                   "conflicting directions and changes quickly in space.")
    with c2:
        chart(traj_panel.fig, "exact-traj", traj=traj_panel.traj, ts=traj_panel.ts)
        k1, k2, k3 = st.columns(3)
        k1.metric("Straightness S", f"{paths['straightness']:.3f}",
                  help="∫ E‖(x1 − x0) − dx_t/dt‖² dt (Liu et al. 2022); 0 for straight paths.")
        k2.metric("Turning angle", f"{np.degrees(paths['curvature']):.0f}°",
                  help="Mean total turning ∫|κ| ds of a path.")
        k3.metric("Crossing lines (x0 → x1 of the flow)",
                  f"{100 * paths['crossing_fraction']:.1f} %")

    # --- 3. Probe ------------------------------------------------------------------------------
    st.header("3 · Probe a point: the average that makes v*")
    st.markdown(
        "Pick a point $x$ at time $t$. Every data point $y_i$ has exactly one line through $x$ "
        "at time $t$; its weight $w_i$ is how likely that pair is. The weighted average of their "
        "directions is $v^\\star(x, t)$.")
    c1, c2, c3 = st.columns([1, 1, 2])
    px = c1.slider("Probe x", -3.0, 3.0, 0.0, 0.1, key="sp_px")
    py = c2.slider("Probe y", -3.0, 3.0, 0.0, 0.1, key="sp_py")
    k_top = c3.slider("Lines shown (largest weights)", 5, 100, 30, 5, key="sp_k")
    probe = torch.tensor([px, py])
    w, p0, p1 = field.pairs_through(probe, t)
    top = torch.argsort(w, descending=True)[:k_top]
    v_star = field(probe[None], t)[0]
    vel = (p1 - p0)
    c1, c2 = st.columns(2)
    with c1:
        fig = fv.viz.probe_fig(probe, p0[top], p1[top], w[top], v_star, vel[top],
                               f"Lines through ({px:.1f}, {py:.1f}) at t = {t:.2f}", LIM)
        chart(fig, "probe")
    with c2:
        # A Monte-Carlo check with nothing in common with the closed form: random independent
        # pairs whose x_t lands within r of the probe, and their mean direction.
        g = torch.Generator().manual_seed(cfg.seed + 7)
        m_mc = 200_000
        a0 = torch.randn(m_mc, 2, generator=g)
        a1 = field.sample_target(m_mc, g)
        xt = (1 - t) * a0 + t * a1
        near = (xt - probe).norm(dim=1) < 0.15
        mc = (a1 - a0)[near].mean(0) if near.sum() > 0 else torch.full((2,), float("nan"))
        st.markdown(f"**v\\*(x, t)** (closed form) = ({v_star[0]:.3f}, {v_star[1]:.3f})  \n"
                    f"**Monte-Carlo**: {int(near.sum())} of {m_mc:,} random pairs pass within "
                    f"0.15 of the probe; their mean direction = ({mc[0]:.3f}, {mc[1]:.3f})  \n"
                    f"**Spread** of the directions: tr Cov = "
                    f"{field.velocity_cov(probe[None], t)[0].trace():.3f}")
        tw = w[top]
        st.dataframe({"weight w_i": tw.numpy().round(4),
                      "x0 (start)": [f"({a:.2f}, {b:.2f})" for a, b in p0[top].tolist()],
                      "x1 (end)": [f"({a:.2f}, {b:.2f})" for a, b in p1[top].tolist()]},
                     height=260, key="probe-table")
        st.caption(f"The {k_top} lines shown carry {100 * float(tw.sum()):.1f} % of the weight.")

# --- 4. Train live -----------------------------------------------------------------------------
st.header("4 · Train a 1-rectified flow live")
st.markdown(
    "A small MLP $v_\\theta(x, t)$ minimises "
    "$\\mathbb E\\,\\|v_\\theta(x_t, t) - (x_1 - x_0)\\|^2$ on the same data. "
    "Its minimiser is exactly $v^\\star$, so the exact field is the answer key.\n\n"
    "Train once with independent pairs, once with minibatch OT, and compare.")
c1, c2, c3, c4, c5 = st.columns(5)
coupling = c1.selectbox("Coupling", ["independent", "ot"], key="sp_coupling", bind="query-params",
                        format_func={"independent": "independent", "ot": "minibatch OT"}.get)
steps = c2.select_slider("Steps", [300, 500, 1000, 2000, 3000, 5000], 1000, key="sp_steps",
                         bind="query-params")
hidden = c3.select_slider("Width", [64, 128, 256], 128, key="sp_hidden")
batch = c4.select_slider("Batch", [128, 256, 512, 1024], 512, key="sp_batch")
lr = c5.select_slider("Learning rate", [1e-3, 2e-3, 3e-3, 5e-3], 3e-3, key="sp_lr")
run = fv.FMRun(source=cfg.source, target=cfg.target, coupling=coupling, n_data=cfg.n_data,
               data_seed=cfg.seed, h=cfg.h, batch=batch,
               model=fv.models.MLPConfig(hidden=hidden),
               optim=fv.OptimConfig(steps=steps, lr=lr, seed=cfg.seed))
key = run_key("fm", run, cfg.upload, cfg.device)
dev = device(cfg)
data_key = (cfg.source, cfg.target, cfg.n_data, cfg.seed, cfg.h, cfg.upload)
label = {"independent": "1-RF, independent", "ot": "1-RF, minibatch OT"}[coupling]
state = live_training(key, lambda: fv.build_fm(run, dev, uploaded_points()),
                      meta={"label": f"{label}, w{hidden}", "data": data_key}, preset=run)
reproduce_box("straight_pairs", "sp_", {"This run's config": run.to_json()}, fm=True)

if state is not None and state.step > 0:
    model = state.sampler_model.eval()
    res = results("sp_results")
    rk = (key, state.step)
    if rk not in res:
        x0e = x0_all[:2000].to(dev)
        ref = exact_field(cfg).sample_target(2000, torch.Generator().manual_seed(99)) \
            if gaussian_source else x1_all[:2000]
        with torch.no_grad():
            res[rk] = {"nfe": quality_vs_nfe(model, x0e, ref.to(dev)),
                       "paths": path_metrics(model, x0_all[:N_PATHS].to(dev), steps=50)}
    r = res[rk]
    c1, c2 = st.columns(2)
    with c1:
        pts, _, _ = grid(LIM * 0.9, GRID)
        vm = field_on(model, pts.to(dev), t).cpu()
        if gaussian_source:
            hx = torch.linspace(-LIM, LIM, 61)
            hpts = torch.stack(torch.meshgrid(hx, hx, indexing="xy"), -1).reshape(-1, 2)
            err = (field_on(model, hpts.to(dev), t).cpu() - exact_field(cfg)(hpts, t)).norm(dim=1)
            chart(fv.viz.field_fig(pts, vm, f"Learned v_θ(x, t = {t:.2f}) over its error "
                                   "‖v_θ − v*‖", heat=(hx, hx, err.reshape(61, 61)),
                                   heat_name="‖v_θ − v*‖", lim=LIM, scale=0.25,
                                   colorscale="Magma"), "learned-field")
        else:
            chart(fv.viz.field_fig(pts, vm, f"Learned v_θ(x, t = {t:.2f})", lim=LIM, scale=0.25),
                  "learned-field")
    with c2:
        chart(fv.viz.trajectories_fig(r["paths"]["traj"].cpu(), "Learned trajectories (RK4, 50 "
                                      "steps)", lim=LIM), "learned-traj",
              traj=r["paths"]["traj"].cpu(), ts=r["paths"]["ts"])
    # every run of this session on this data: one line each, plus the exact field
    rows, curves = [], {}
    if gaussian_source:
        curves["exact v*"] = exact_nfe_curve(cfg)
    for k_, s_ in st.session_state["runs"].items():
        rr = res.get((k_, s_.step))
        if rr is None or s_.meta.get("data") != data_key:
            continue
        label = f"{s_.meta['label']} · {s_.step} steps"
        curves[label] = rr["nfe"]
        q = dict(zip(*rr["nfe"], strict=True))
        rows.append({"run": label, "ED @1": q[1], "ED @4": q[4], "ED @16": q[16],
                     "ED @128": q[128], "straightness": rr["paths"]["straightness"],
                     "turning (°)": np.degrees(rr["paths"]["curvature"]),
                     "crossings %": 100 * rr["paths"]["crossing_fraction"],
                     "E‖x1−x0‖²": rr["paths"]["transport_cost"]})
    c1, c2 = st.columns([3, 2])
    with c1:
        chart(fv.viz.quality_vs_nfe_fig(curves, title="Quality vs NFE, Euler (energy distance "
                                        "to the data)"), "sp-nfe")
    with c2:
        st.dataframe(rows, key="runs-table", column_config={
            c: st.column_config.NumberColumn(format="%.4f") for c in ("ED @1", "ED @4", "ED @16",
                                                                       "ED @128")})
        st.caption("Energy distance (ED) of 2000 Euler samples to 2000 fresh samples of the "
                   "data at NFE 1, 4, 16, 128; path metrics from 200 RK4 trajectories.")
