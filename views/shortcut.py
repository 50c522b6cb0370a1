"""Shortcut models: one network for 1 to 128 steps (article §5–5.2, §6.3.1; Frans et al.,
"One Step Diffusion via Shortcut Models", ICLR 2025).

s(x_t, t, d) learns the average direction over [t, t + d]. Flow matching anchors d = 0 and the
self-consistency identity ties a step of 2d to two steps of d. Train live, then see the family of
M-step samplers from the same noise, the field at several d, the identity at one point, and the
quality vs M against plain FM (same network, same training time).
"""

import streamlit as st
import torch

import flowviz as fv
from flowviz.analysis import NFES, field_on, grid, quality_vs_nfe
from flowviz.experiment import FAST_SHORTCUT, same_time
from flowviz.methods.shortcut import (
    TEMPLATES,
    ShortcutConfig,
    Template,
    TemplateError,
    at_d,
    consistency_picture,
    sample,
)
from flowviz.models import MLPConfig
from flowviz.reproduce import clouds_section, euler_clouds
from views.cache import cached, exact_field, exact_nfe_curve, noise_floor, source_points
from views.charts import chart
from views.reproduce import reproduce_box
from views.results import results
from views.state import device, page_settings, run_key, uploaded_points
from views.teach import notice, predict
from views.training import live_training, partner_preset, same_time_caption, training_active

LIM, GRID, N_EVAL, N_PATHS, FLOOR = 4.5, 17, 2000, 30, 1e-4
MS = NFES  # 1, 2, 4, ..., 128
RULES = {"halves": "Two equal halves, weights ½, ½ (the paper, §5.1)",
         "two_thirds": "Unequal split ⅔ d + ⅓ d, weights ⅔, ⅓ (§6.3.1)",
         "thirds": "Three equal thirds, weights ⅓ each",
         "first_only": "Halves with weights 1, 0 (inconsistent)",
         "custom": "Custom template…"}
SHOWN = (1, 2, 4, 128)


def ed_floor(q):
    """Energy distances for log axes: unbiased estimates can dip below 0 (noise); drawn at FLOOR."""
    return [max(FLOOR, v) for v in q]


@cached(show_spinner=False, max_entries=16)
def exact_clouds(cfg, ms=(1, 4, 32), n=600):
    """Euler samples of the exact FM field v* (no training): what a perfect FM model gives."""
    field = exact_field(cfg)
    ref = field.sample_target(n, torch.Generator().manual_seed(99))
    return euler_clouds(field, source_points("gaussian", n, cfg.seed + 1), ref, ms), ref


def parse(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.replace(";", ",").split(",") if v.strip())


st.title("Shortcut models: one network, 1 to 128 steps")
st.caption("Article §5–5.2 and §6.3.1 · Frans et al., *One Step Diffusion via Shortcut Models* "
           "(ICLR 2025)")
st.markdown(
    "A flow-matching model learns the *instantaneous* velocity $v(x, t)$, but a sampler with few "
    "steps takes *finite* jumps, and on a curved flow the tangent points off target. A shortcut "
    "model takes the step size $d$ as a second input and learns the average direction over "
    "$[t, t+d]$, so a jump of any size lands where the flow would:")
st.latex(r"x_{t+d}=x_t+d\,s_\theta(x_t,t,d),\qquad s_\theta(x,t,0)=v(x,t)")
st.markdown("Two steps of $d$ must give the same result as one step of $2d$ "
            "(the self-consistency identity, §5.1):")
st.latex(r"s(x_t,t,2d)=\tfrac12\,s(x_t,t,d)+\tfrac12\,s(x'_{t+d},t+d,d),\qquad "
         r"x'_{t+d}=x_t+d\,s(x_t,t,d)")
st.markdown(
    "Training: **flow matching at $d = 0$** on most of each batch, **self-consistency** on "
    "the rest, with $d$ on a grid of powers of two down to $1/128$ and $t$ a multiple of the step. "
    "No teacher: the target comes from the model itself (stop-gradient, or its EMA copy).")

cfg = page_settings()
gaussian_source = cfg.source == "gaussian"
dev = device(cfg)

if gaussian_source:
    with st.expander("Why: even the *exact* flow-matching field needs many steps", expanded=True):
        clouds, ref_small = exact_clouds(cfg)
        cols = st.columns(len(clouds))  # also `python -m flowviz figure shortcut`
        for col, (m, p) in zip(cols, clouds_section(clouds, ref_small, LIM).items(), strict=True):
            with col:
                chart(p.fig, f"exact-cloud-{m}", arrays=p.arrays)
        st.caption("Euler on the closed-form marginal field v* of this data (the best any FM "
                   "model can do): at t = 0, v*(x, 0) = E[x1] − x, so one step sends every "
                   "sample to the data mean. ED: energy distance to the data (lower is better; "
                   "the estimate is unbiased, so values below zero are sampling noise).")
        eds = {m: ed for m, (_, ed) in clouds.items()}
        one, few, many = sorted(eds)
        predict("sc-exact", f"The exact field v* is the best any flow-matching model can learn. "
                f"Sample it with **{few} Euler steps**: will the samples match the data as "
                f"well as with {many} steps?",
                ["Yes: the field is exact, so a few steps suffice",
                 "No: a few steps along the tangent miss the curved flow"],
                "No: a few steps along the tangent miss the curved flow"
                if eds[few] > 2 * eds[many] + 0.002
                else "Yes: the field is exact, so a few steps suffice",
                f"Energy distance to the data measured above: {eds[one]:.3f} after {one} step, "
                f"{eds[few]:.3f} after {few}, {eds[many]:.4f} after {many}. An exact "
                "tangent is still a tangent: on a curved flow a finite step leaves the path. A "
                "shortcut model learns s(x, t, d), the average direction over [t, t + d] (the "
                "chord), so a jump of any size can land on the flow.", "§5, §5.1")
notice("Watch one network serve every budget: s(x, t, d) takes the step size as an input. Small "
       "d reproduces the flow-matching velocity; large d pre-bends the direction to cut the "
       "corner of the curved flow, taught only by the model's own two half steps.", "§5.1, §5.2")

# --- 1. Train live -------------------------------------------------------------------------
st.header("1 · Train the shortcut model live")
c1, c2 = st.columns([2, 3])
rule = c1.selectbox("Target rule (§6.3.1: a learned integrator)", list(RULES), key="sc_rule",
                    format_func=RULES.get)
template = None
if rule == "custom":
    a, b = c2.columns(2)
    seg_text = a.text_input("Segments β_i (fractions of the step)", "0.5, 0.5", key="sc_seg")
    w_text = b.text_input("Weights w_i", "0.7, 0.3", key="sc_w")
    try:
        template = Template(parse(seg_text), parse(w_text))
    except (TemplateError, ValueError) as e:
        c2.error(f"Not a valid template: {e}")
else:
    template = TEMPLATES[rule]
if template is not None:
    with c2:
        if template.consistent:
            st.success(f"Consistent: {template.label()}. The weights equal the segment lengths, "
                       "so D·s_tgt is exactly the displacement of the composed steps and the "
                       "true flow map is a fixed point.")
        else:
            st.warning(f"Inconsistent composition: {template.label()}. "
                       + "; ".join(template.problems()) + ". Train it and compare the curves "
                       "in section 5 to see what the model learns instead.")

st.latex(r"s_{\rm tgt}(x_t,t,D)=\sum_i w_i\,s\big(x_i,\;t+\alpha_i D,\;\beta_i D\big),\qquad "
         r"x_1=x_t,\quad x_{i+1}=x_i+\beta_i D\,s_i,\quad \alpha_i=\textstyle\sum_{j<i}\beta_j")
st.caption("The general template of §6.3.1 for a step D: walk D in segments β_i D and average the "
           "segment directions with weights w_i. Halves (β = w = ½, ½) are the paper's rule with "
           "D = 2d. A segment shorter than 1/128 uses s(·, ·, 0), the FM velocity.")
c1, c2, c3, c4, c5, c6 = st.columns(6)
target_net = c1.selectbox("Target from", ["ema", "stopgrad"], key="sc_target",
                          index=["ema", "stopgrad"].index(FAST_SHORTCUT.shortcut.target),
                          format_func={"ema": "EMA copy", "stopgrad": "stop-gradient"}.get)
d_grid = c2.selectbox("Step sizes d", ["pow2", "steps"], key="sc_grid",
                      format_func={"pow2": "powers of two", "steps": "any step count"}.get,
                      help="Powers of two: D ∈ {1, ½, …, 1/128}. Any step count: D = 1/M for "
                           "any integer M ≤ 128 (log-uniform), so M = 3 or 100 are trained too.")
sc_frac = c3.select_slider("Self-consistency share", [0.0, 0.1, 0.25, 0.5, 0.75],
                           FAST_SHORTCUT.shortcut.sc_frac,
                           key="sc_frac", help="Fraction of each batch on the self-consistency "
                                               "loss (the paper uses about ¼); the rest is FM.")
steps = c4.select_slider("Steps", [500, 1000, 2000, 3000, 5000], FAST_SHORTCUT.optim.steps,
                         key="sc_steps")
hidden = c5.select_slider("Width", [64, 128, 256], FAST_SHORTCUT.model.hidden, key="sc_hidden")
lr = c6.select_slider("Learning rate", [1e-3, 2e-3, 3e-3, 5e-3, 8e-3], FAST_SHORTCUT.optim.lr,
                      key="sc_lr")

if template is None:
    st.stop()
run = fv.ShortcutRun(
    source=cfg.source, target=cfg.target, n_data=cfg.n_data, data_seed=cfg.seed, h=cfg.h,
    batch=FAST_SHORTCUT.batch, model=MLPConfig(hidden=hidden, n_scalars=2),
    optim=fv.OptimConfig(steps=steps, lr=lr, seed=cfg.seed),
    shortcut=ShortcutConfig(sc_frac=sc_frac, target=target_net, d_grid=d_grid,
                            template=template))
if off := run.shortcut.off_grid():
    shown = ", ".join(f"s(·, ·, {h:.3g}) for D = 1/{m}" for m, h in off[:3])
    st.info(f"This target asks for step sizes that no target trains: {shown}"
            f"{' …' if len(off) > 3 else ''} ({len(off)} in all). The network can only "
            "interpolate in d there, so those targets are guesses and the error climbs the "
            "levels up to the one-step jump. "
            + ("'Any step count' trains more step sizes." if d_grid == "pow2" else ""))
key = run_key("sc", run, cfg.upload, cfg.device)
data_key = (cfg.source, cfg.target, cfg.n_data, cfg.seed, cfg.h, cfg.upload)
label = "custom" if rule == "custom" else rule.replace("_", " ")
state = live_training(key, lambda: fv.build_shortcut(run, dev, uploaded_points()),
                      meta={"label": f"shortcut, {label}, {target_net}, {steps} steps",
                            "data": data_key, "kind": "shortcut"},
                      loss_keys=("loss", "L_FM", "L_SC"), preset=run)
st.caption("Loss parts: **L_FM**, flow matching of s(·, ·, 0) on (1 − share) of each batch; "
           "**L_SC**, self-consistency ‖s(x_t, t, 2d) − s_tgt‖² on the rest; the total is "
           "their batch-weighted mean.")
reproduce_box("shortcut", "sc_", {"This run's config": run.to_json()})

if state is None or state.step == 0:
    st.info("**Press Train live** to train s(x, t, d) on this data (a few thousand steps; the "
            "progress and both loss parts update as it runs). Then this page shows the family of "
            "1- to 128-step samplers from the same noise, the field at several d, the "
            "self-consistency identity at a point you choose, and quality vs steps against "
            "plain flow matching trained for the same time.")
    st.stop()
if training_active(key) and not state.done:
    st.info("Training… the sections below (the family of samplers, the fields, the "
            "self-consistency picture and quality vs steps) appear when the run finishes or when "
            "you pause it.")
    st.stop()

# --- evaluation, cached per (run, step) ------------------------------------------------------
model = state.sampler_model.eval()
res = results("sc_results")
x0_eval = source_points(cfg.source, N_EVAL, cfg.seed + 1, cfg.upload).to(dev)
ref = exact_field(cfg).sample_target(N_EVAL, torch.Generator().manual_seed(99)).float().to(dev)


def evaluate(m_, key_):
    """Trajectories (first N_PATHS), clouds and ED per M, from the same noise."""
    rk = (key_, runs[key_].step)
    if rk not in res:
        out = {"traj": {}, "x": {}, "ed": {}}
        for m in MS:
            s = sample(m_, x0_eval, m, return_traj=True)
            out["traj"][m] = s.traj[:, :N_PATHS].cpu()
            out["x"][m] = s.x.cpu()
            out["ed"][m] = fv.metrics.energy_distance(s.x, ref)
        res[rk] = out
    return res[rk]


runs = st.session_state["runs"]
with st.spinner("Sampling with M = 1 … 128 steps"):
    r = evaluate(model, key)

# --- 2. The family ---------------------------------------------------------------------------
st.header("2 · One network, a family of samplers")
st.markdown("The same noise, sampled with $M$ steps of $d = 1/M$ ($M$ network calls). A good "
            "shortcut model's one long jump lands where the 128 small steps end.")
c1, c2 = st.columns([3, 2])
with c1:
    chart(fv.viz.family_fig(r["traj"], f"Paths for M = 1 … 128 from the same {N_PATHS} noise "
                            "points", N_PATHS, LIM), "sc-family", traj=r["traj"][max(MS)],
          arrays={f"traj_M{m}": r["traj"][m] for m in MS})
with c2:
    ends = torch.stack([r["traj"][m][-1] for m in MS])  # (len(MS), N_PATHS, 2)
    spread = (ends - ends[-1]).norm(dim=-1).mean(1)
    st.markdown("**How far each sampler's end points are from the 128-step ends** "
                "(mean over the paths drawn):")
    st.dataframe({"M (network calls)": list(MS), "mean distance to M = 128": spread.numpy(),
                  "ED to data": [r["ed"][m] for m in MS]}, key="sc-family-table",
                  column_config={"mean distance to M = 128": st.column_config.NumberColumn(
                      format="%.3f"), "ED to data": st.column_config.NumberColumn(format="%.4f")})
    st.caption(f"ED: energy distance of {N_EVAL} samples to {N_EVAL} data points (lower is "
               f"better). Its sampling noise here is ±{noise_floor(cfg, N_EVAL):.4f} (two "
               "independent data sets); the estimate is unbiased, so values below zero are noise.")
chart(fv.viz.clouds_grid_fig(ref[:1000].cpu(), {m: r["x"][m][:1000] for m in MS},
                             {m: f"M = {m} · ED {r['ed'][m]:.4f}" for m in MS}, lim=LIM),
      "sc-clouds")

# --- 3. The field at several d -------------------------------------------------------------
st.header("3 · The field s(·, t, d) pre-bends for large d")
t_f = st.slider("Time t", 0.0, 0.875, 0.0, 0.125, key="sc_t", bind="query-params",
                help="The panels show d = 0 and the three largest powers of two with t + d ≤ 1.")
ds = [0.0] + [d for d in (1 / 8, 1 / 4, 1 / 2, 1.0) if t_f + d <= 1 + 1e-9][-3:]
st.markdown(f"Arrows: $s(x, t = {t_f:.3f}, d)$. Colour: $\\|s(x, t, d) - s(x, t, 0)\\|$, how far "
            "the jump direction has turned away from the instantaneous velocity to cut the "
            "corner of the curved flow.")
pts, _, _ = grid(LIM * 0.9, GRID)
hx = torch.linspace(-LIM, LIM, 41)
hpts = torch.stack(torch.meshgrid(hx, hx, indexing="xy"), -1).reshape(-1, 2).to(dev)
v0 = at_d(model, 0.0)
base_h = field_on(v0, hpts, t_f)
cols = st.columns(2)
for i, d in enumerate(ds):
    s_d = field_on(at_d(model, d), pts.to(dev), t_f).cpu()
    heat = None
    if d > 0:
        dev_h = (field_on(at_d(model, d), hpts, t_f) - base_h).norm(dim=1).reshape(41, 41).cpu()
        heat = (hx, hx, dev_h)
    name = "s(x, t, 0) = v(x, t): the FM velocity" if d == 0 else f"s(x, t, d = {d:g})"
    with cols[i % 2]:
        chart(fv.viz.field_fig(pts, s_d, f"{name} at t = {t_f:g}", heat=heat,
                               heat_name="‖s_d − s_0‖", lim=LIM, scale=0.25, height=430,
                               colorscale="Magma"), f"sc-field-{d:g}")

# --- 4. Self-consistency at a point ----------------------------------------------------------
st.header("4 · Self-consistency at one point: a step of 2d against two steps of d")
c1, c2, c3, c4 = st.columns(4)
px = c1.slider("Point x", -3.0, 3.0, -1.0, 0.1, key="sc_px")
py = c2.slider("Point y", -3.0, 3.0, 1.0, 0.1, key="sc_py")
t_p = c3.slider("Time t", 0.0, 0.75, 0.0, 0.125, key="sc_tp")
d_opts = [d for d in (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2) if t_p + 2 * d <= 1 + 1e-9]
d_p = c4.select_slider("Half step d", d_opts, d_opts[-1], key="sc_dp", bind="query-params",
                       format_func=lambda v: f"1/{round(1 / v)}")
f, f2 = (rf"\tfrac{{1}}{{{round(1 / v)}}}" if v < 1 else "1" for v in (d_p, 2 * d_p))
c4.latex(rf"s(x,t,{f2})\overset{{!}}{{=}}\tfrac12\,s(x,t,{f})+\tfrac12\,s(x',t+{f},{f})")
point = torch.tensor([[px, py]], device=dev)
pic = consistency_picture(model, point, t_p, d_p)
fine = fv.solve(v0, point, "rk4", 64, t0=t_p, t1=t_p + 2 * d_p, return_traj=True)
c1, c2 = st.columns([3, 2])
with c1:
    chart(fv.viz.consistency_fig({k: v.cpu() for k, v in pic.items()}, 0, fine.traj.cpu(),
                                 title=f"From ({px:.1f}, {py:.1f}) at t = {t_p:g}, "
                                       f"d = 1/{round(1 / d_p)}"), "sc-consistency")
with c2:
    one, two, end = pic["one"][0], pic["two"][0], fine.x[0]
    k1, k2, k3 = st.columns(3)
    k1.metric("Gap", f"{float((one - two).norm()):.4f}",
              help="‖one − two‖, the self-consistency residual at this point: zero when the "
                   "identity holds.")
    k2.metric("One step: error", f"{float((one - end).norm()):.4f}",
              help="Distance of the 2d-jump's end to a 64-step RK4 solve of s(·, ·, 0) over the "
                   "same interval (the dotted path).")
    k3.metric("Two steps: error", f"{float((two - end).norm()):.4f}",
              help="Distance of the two d-steps' end to the same fine solve.")
    gap = consistency_picture(model, hpts, t_p, d_p)["gap"].reshape(41, 41).cpu()
    chart(fv.viz.heatmap_fig(hx, hx, gap, f"Gap ‖one − two‖ over the plane (t = {t_p:g}, "
                             f"d = 1/{round(1 / d_p)})", "gap", LIM, 360, "Magma"), "sc-gap")
st.caption("Orange: one step of size 2d with s(x, t, 2d). Blue: a step of d to the midpoint x′, "
           "then a step of d with s(x′, t + d, d). Dotted: the model's own d = 0 field integrated "
           "finely (what both should reproduce). Training pulls the orange end onto the blue one.")

# --- 5. Quality vs M against plain FM -------------------------------------------------------
st.header("5 · Quality vs steps: shortcut vs plain flow matching")
st.markdown(
    "The plain FM model has the same network (without the $d$ input), the same data and batch, "
    "and is trained for **the same time**: its number of steps is the shortcut's times the "
    "measured cost ratio of one step of each on this machine. It samples with Euler at the same "
    "number of network calls.")
fm_key = f"scfm:{key}"


def build_fm_same_time():
    fm_run, cost = same_time(run, n=15, reps=3, device=dev, uploaded=uploaded_points())
    fm_state = fv.build_fm(fm_run, dev, uploaded_points())
    fm_state.meta["cost"] = cost
    return fm_state


fm_state = live_training(fm_key, build_fm_same_time, preset=partner_preset(key),
                         meta={"label": "plain FM, Euler", "data": data_key, "kind": "fm"})
curves, rows = {}, []
for k_, s_ in runs.items():
    if s_.meta.get("kind") != "shortcut" or s_.meta.get("data") != data_key or s_.step == 0:
        continue
    rr = evaluate(s_.sampler_model.eval(), k_) if k_ != key else r
    name = f"{s_.meta['label']}{' (this run)' if k_ == key else ''}"
    curves[name] = (list(MS), ed_floor([rr["ed"][m] for m in MS]))
    rows.append({"model": name, **{f"ED @{m}": rr["ed"][m] for m in SHOWN},
                 "train s": s_.seconds, "steps": s_.step})
if fm_state is not None and fm_state.step > 0:
    fm_res = results("sc_fm_results")
    fk = (fm_key, fm_state.step)
    if fk not in fm_res:
        fm_res[fk] = quality_vs_nfe(fm_state.sampler_model.eval(), x0_eval, ref)
    n_, q_ = fm_res[fk]
    curves["plain FM, Euler (same time)"] = (n_, ed_floor(q_))
    q = dict(zip(n_, q_, strict=True))
    rows.append({"model": "plain FM, Euler", **{f"ED @{m}": q[m] for m in SHOWN},
                 "train s": fm_state.seconds, "steps": fm_state.step})
    same_time_caption(fm_state, "shortcut", "FM", steps)
if gaussian_source:
    n_, q_ = exact_nfe_curve(cfg, N_EVAL)
    curves["exact v*, Euler (perfect FM)"] = (n_, ed_floor(q_))
fig = fv.viz.quality_vs_nfe_fig(curves, title="Energy distance to the data vs network calls "
                                "(lower is better)", height=460)
fig.update_layout(legend=dict(y=-0.22), margin=dict(b=110))  # legend clear of the NFE axis title
chart(fig, "sc-quality")
st.dataframe(rows, key="sc-quality-table", column_config={
    f"ED @{m}": st.column_config.NumberColumn(format="%.4f") for m in SHOWN}
    | {"train s": st.column_config.NumberColumn(format="%.1f")})
st.caption(f"{N_EVAL} samples from the same noise against {N_EVAL} data points; sampling "
           f"noise of ED ±{noise_floor(cfg, N_EVAL):.4f}. Values below {FLOOR:g} (noise: the "
           "estimate is unbiased and can be negative) are drawn at the floor. Every shortcut run "
           "of this session on this data is a curve: train another target rule to compare.")
