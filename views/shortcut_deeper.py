"""The Shortcut page's "Go deeper" sections (article §5.1, §6.3.1), each computed only when
chosen: the field s(·, t, d) at several d, one step of 2d against two of d at a point, target
templates (a learned integrator), the two parts of the loss, and what steps cost."""

import streamlit as st
import torch

import flowviz as fv
from flowviz.analysis import NFES, grid
from flowviz.methods.shortcut import consistency_picture
from flowviz.shortcut_lesson import consistency_at, family, fields_at_d, sampling_ms
from flowviz.viz.style import format_distance
from views.charts import chart
from views.results import results
from views.teach import deeper

LIM, GRID, HEAT = 4.5, 17, 41
BAR_TITLE = dict(colorbar=dict(title=dict(side="right")))  # a colour-bar title beside its ticks
FIELD, IDENTITY, TEMPLATES, LOSS, COSTS = (
    "The field at several d", "2d vs two steps of d", "Target templates", "Loss parts",
    "Step costs")


def show(model, state, key: str, data_key: tuple, cfg, x0, ref, floor: float) -> None:
    pick = deeper("sc_deeper", [FIELD, IDENTITY, TEMPLATES, LOSS, COSTS])
    if pick == FIELD:
        field_at_d(model, x0.device)
    elif pick == IDENTITY:
        identity_at_a_point(model, x0.device)
    elif pick == TEMPLATES:
        templates(key, data_key, x0, ref, floor)
    elif pick == LOSS:
        loss_parts(state)
    elif pick == COSTS:
        step_costs(model, state, key, x0)


def field_at_d(model, dev) -> None:
    st.subheader("The field s(·, t, d) pre-bends for large d")
    t = st.slider("Time t", 0.0, 0.875, 0.0, 0.125, key="sc_t", bind="query-params",
                  help="The panels show d = 0 and the three largest powers of two with t + d ≤ 1.")
    ds = [0.0] + [d for d in (1 / 8, 1 / 4, 1 / 2, 1.0) if t + d <= 1 + 1e-9][-3:]
    st.markdown(f"Arrows: $s(x, t = {t:.3f}, d)$. Colour: $\\|s(x, t, d) - s(x, t, 0)\\|$, how "
                "far the jump direction has turned from the instantaneous velocity to cut the "
                "corner of the curved flow.")
    pts, _, _ = grid(LIM * 0.9, GRID)
    hx = torch.linspace(-LIM, LIM, HEAT)
    plane = torch.stack(torch.meshgrid(hx, hx, indexing="xy"), -1).reshape(-1, 2).to(dev)
    fields = fields_at_d(model, pts.to(dev), plane, t, ds)
    cols = st.columns(2)
    for i, (d, (arrows, turn)) in enumerate(fields.items()):
        name = "d = 0: the FM velocity v(x, t)" if d == 0 else f"s(x, t, d = {d:g})"
        heat = None if d == 0 else (hx, hx, turn.reshape(HEAT, HEAT))
        with cols[i % 2]:
            fig = fv.viz.field_fig(pts, arrows, f"{name} at t = {t:g}", heat=heat,
                                   heat_name="‖s_d − s_0‖", lim=LIM, scale=0.25, height=400,
                                   colorscale="Magma")
            chart(fig.update_traces(**BAR_TITLE, selector=dict(type="heatmap")),
                  f"sc-field-{d:g}")


def identity_at_a_point(model, dev) -> None:
    st.subheader("One step of 2d against two steps of d, at one point")
    c1, c2, c3, c4 = st.columns(4)
    px = c1.slider("Point x", -3.0, 3.0, -1.0, 0.1, key="sc_px")
    py = c2.slider("Point y", -3.0, 3.0, 1.0, 0.1, key="sc_py")
    t = c3.slider("Time t", 0.0, 0.75, 0.0, 0.125, key="sc_tp")
    d_opts = [d for d in (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2) if t + 2 * d <= 1 + 1e-9]
    d = c4.select_slider("Half step d", d_opts, d_opts[-1], key="sc_dp", bind="query-params",
                         format_func=lambda v: f"1/{round(1 / v)}")
    c = consistency_at(model, torch.tensor([[px, py]], device=dev), t, d)
    k1, k2, k3 = st.columns(3)
    k1.metric("Gap ‖one − two‖", f"{c['gap']:.4f}",
              help="The self-consistency residual at this point: zero when the identity holds.")
    k2.metric("One step of 2d: error", f"{c['error_one_step']:.4f}",
              help="Distance of the 2d jump's end to a 64-step RK4 solve of s(·, ·, 0) over "
                   "the same interval (the dotted path).")
    k3.metric("Two steps of d: error", f"{c['error_two_steps']:.4f}",
              help="Distance of the two d-steps' end to the same fine solve.")
    c1, c2 = st.columns([3, 2])
    with c1:
        chart(fv.viz.consistency_fig(c["picture"], 0, c["fine"], height=460,
                                     title=f"From ({px:.1f}, {py:.1f}) at t = {t:g}, "
                                           f"d = 1/{round(1 / d)}"), "sc-consistency")
    with c2:
        hx = torch.linspace(-LIM, LIM, HEAT)
        plane = torch.stack(torch.meshgrid(hx, hx, indexing="xy"), -1).reshape(-1, 2).to(dev)
        gap = consistency_picture(model, plane, t, d)["gap"]
        fig = fv.viz.heatmap_fig(hx, hx, gap.reshape(HEAT, HEAT).cpu(), "The gap over the plane",
                                 "gap", LIM, 400, "Magma")
        chart(fig.update_traces(**BAR_TITLE, selector=dict(type="heatmap")), "sc-gap")
    st.caption("Orange: one step of 2d with s(x, t, 2d). Blue: a step of d to x′, then a step "
               "of d with s(x′, t + d, d). Dotted: the model's own d = 0 field integrated "
               "finely. Training pulls the orange end onto the blue one.")


def templates(key: str, data_key: tuple, x0, ref, floor: float) -> None:
    st.subheader("The target as a learned integrator (§6.3.1)")
    st.markdown("For a step $D$, walk it in segments $\\beta_i D$ and average the segment "
                "directions with weights $w_i$ (halves, $\\beta = w = ½, ½$, are the paper's "
                "rule with $D = 2d$):")
    st.latex(r"s_{\rm tgt}(x_t,t,D)=\textstyle\sum_i w_i\,s(x_i,\,t+\alpha_i D,\,\beta_i D)")
    st.latex(r"x_{i+1}=x_i+\beta_i D\,s_i,\qquad \alpha_i=\textstyle\sum_{j<i}\beta_j")
    st.caption("A segment shorter than 1/128 uses s(·, ·, 0), the FM velocity. Pick another "
               "rule under Training settings and train it: every shortcut run of this session "
               "on this data is a curve here.")
    res = results("sc_results")
    curves, rows = {}, []
    for k, s in st.session_state.get("runs", {}).items():
        if s.meta.get("kind") != "shortcut" or s.meta.get("data") != data_key or s.step == 0:
            continue
        rk = (k, s.step)
        if rk not in res:
            res[rk] = family(s.sampler_model.eval(), x0, ref, NFES) | {"ref": ref[:1000].cpu()}
        ed = res[rk]["ed"]
        name = f"{s.meta['label']}{' (this run)' if k == key else ''}"
        curves[name] = (list(NFES), [ed[m] for m in NFES])
        rows.append({"Shortcut run": name, **{f"M = {m}": format_distance(ed[m], floor)
                                              for m in (1, 2, 4, 128)},
                     "training (s)": round(s.seconds, 1)})
    chart(fv.viz.quality_vs_nfe_fig(curves, title="Every target rule trained in this session",
                                    height=420, floor=floor), "sc-templates")
    st.dataframe(rows, key="sc-templates-table", hide_index=True)


def loss_parts(state) -> None:
    st.subheader("The two parts of the loss")
    share = state.objective.cfg.sc_frac
    st.markdown(f"**L_FM**: flow matching of $s(\\cdot,\\cdot,0)$ on {1 - share:.0%} of each "
                f"batch. **L_SC**: self-consistency $\\|s(x_t,t,2d)-s_{{\\rm tgt}}\\|^2$ on the "
                f"other {share:.0%}. The total drawn in section 1 is their batch-weighted mean.")
    chart(fv.viz.loss_fig(state.history, ("L_FM", "L_SC"), "The loss parts"), "sc-loss-parts")


def step_costs(model, state, key: str, x0) -> None:
    st.subheader("What a step costs")
    fm = st.session_state.get("runs", {}).get(f"scfm:{key}")
    if fm is not None and "cost" in fm.meta:
        sc_ms, fm_ms = fm.meta["cost"]
        st.markdown(f"**Training**: a shortcut step costs {sc_ms:.1f} ms against {fm_ms:.1f} ms "
                    f"for plain flow matching ({sc_ms / fm_ms:.2f}×): the self-consistency "
                    "target needs two extra forward passes on its share of the batch. That "
                    "ratio set the plain-FM run's steps.")
    ms = sampling_ms(model, x0[:500], NFES)
    st.markdown("**Sampling** 500 points on this machine (median of 3):")
    st.dataframe([{"M (network calls)": m, "ms": round(t, 2)} for m, t in ms.items()],
                 key="sc-costs-table", hide_index=True)
    st.caption(f"This run: {state.step} training steps in {state.seconds:.1f} s.")
