"""Straight pairs, curved flow (article §1.2, §2, §2.1).

The lesson: independent (x0, x1) pairs are straight lines that cross; the question (what do the
paths of the best possible model look like?); the exact field v* = E[x1 − x0 | x_t = x] averages
the directions through each point, so its paths bend; a 1-rectified flow trained live learns
that field. Deeper: minibatch-OT pairs, the average at one point, the runs in detail.
"""

import streamlit as st
import torch

import flowviz as fv
from flowviz.averaging import evaluate_flow, learned_field, monte_carlo_velocity, probe
from flowviz.reproduce import field_section, pairs_section
from flowviz.viz.style import format_distance
from views.cache import data_points, exact_field, exact_nfe_curve, noise_floor, source_points
from views.charts import chart
from views.reproduce import reproduce_box
from views.results import results
from views.state import device, page_settings, run_key, uploaded_points
from views.teach import ask, deeper, verdict, waiting
from views.training import live_training

LIM, GRID, N_PAIRS, N_PATHS, N_EVAL = 4.5, 21, 150, 200, 2000
STRAIGHT, BENT, CROSSING = ("Straight lines, like the pairs", "Curved paths",
                            "Straight, but crossing each other")


def pair_lines(x0_all, x1_all, seed: int) -> tuple[dict, str | None]:
    """Section 1 and the question: independent pairs, their crossings, what v* will do."""
    st.header("1 · Every pair is a straight line, and the lines cross")
    (panel, pairs), = pairs_section(x0_all, x1_all, seed, N_PAIRS, LIM, ("Independent",),
                                    height=420).values()
    left, right = st.columns([5, 4])
    with left:
        chart(panel.fig, "pairs-independent", arrays=panel.arrays)
    with right:
        st.markdown("Flow matching pairs noise $x_0$ with data $x_1$ at random and trains on "
                    "the straight line between them, velocity $x_1 - x_0$.")
        st.metric("Pairs of lines that cross", f"{100 * pairs['crossing_fraction']:.1f} %")
        choice = ask("sp-bend", "The network sees only x_t and t. Where lines cross it can "
                     "learn one velocity, at best their average v*(x, t) = E[x1 − x0 | x_t = x]. "
                     "Follow v* from noise to data: what do its paths look like?",
                     [STRAIGHT, BENT, CROSSING], "§2, §2.1")
    return pairs, choice


def exact_flow(cfg, x0_all, pairs: dict) -> None:
    """Section 2, the answer: v* over the spread of directions, and its bent paths."""
    st.header("2 · Averaging the directions bends the flow")
    left, right = st.columns(2)
    t = left.slider("Time t", 0.0, 0.95, 0.5, 0.05, key="sp_t", bind="query-params",
                    help="The field and the spread of directions are drawn at this time.")
    field_panel, traj_panel, paths = field_section(exact_field(cfg), x0_all[:N_PATHS], t, LIM,
                                                   GRID, height=400)
    k1, k2 = right.columns(2)
    k1.metric("Straightness S", f"{paths['straightness']:.3f}",
              help="∫ E‖(x1 − x0) − dx_t/dt‖² dt (Liu et al. 2022); 0 for straight paths.")
    k2.metric("Chords x0 → x1 that cross", f"{100 * paths['crossing_fraction']:.1f} %")
    with left:
        chart(field_panel.fig, "field", arrays=field_panel.arrays)
    with right:
        chart(traj_panel.fig, "exact-traj", traj=traj_panel.traj, ts=traj_panel.ts)
    s, cross, before = paths["straightness"], paths["crossing_fraction"], \
        pairs["crossing_fraction"]
    answer = BENT if s > 0.05 else CROSSING if cross > 0.5 * before else STRAIGHT
    verdict("sp-bend", answer,
            f"Measured on {N_PATHS} paths: straightness S = {s:.3f} (0 for straight lines), and "
            f"their chords cross in {100 * cross:.1f} % of pairs against {100 * before:.1f} % "
            "for the training pairs. Where lines meet (bright on the left: their directions "
            "disagree), v* averages them, so its paths bend around each other; a solver with "
            "few steps cuts those bends.")


def train(cfg, x0_all, x1_all) -> fv.FMRun:
    """Section 3: a 1-rectified flow trained live (its minimiser is v*)."""
    st.header("3 · Train a 1-rectified flow live")
    st.caption("A small MLP minimises E‖v_θ(x_t, t) − (x1 − x0)‖², whose minimiser is exactly "
               "v*: the exact field is the answer key.")
    c1, c2, c3, c4, c5 = st.columns(5)
    coupling = c1.selectbox("Coupling", ["independent", "ot"], key="sp_coupling",
                            bind="query-params",
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
    label = {"independent": "1-RF, independent", "ot": "1-RF, minibatch OT"}[coupling]
    left, right = st.columns(2)
    with left:
        state = live_training(key, lambda: fv.build_fm(run, dev, uploaded_points()),
                              meta={"label": f"{label}, w{hidden}", "data": data_key(cfg)},
                              preset=run)
    st.session_state["straight_pairs:last_run"] = key
    with right:
        if state is None or state.step == 0:
            waiting("Train a run: its quality at 1 to 128 Euler steps is drawn here, beside the "
                    "exact field's.")
        else:
            evaluate(cfg, key, state, x0_all, x1_all)
            curves = {"exact v*": exact_nfe_curve(cfg)} if cfg.source == "gaussian" else {}
            curves |= {label: e["nfe"] for label, e in session_runs(cfg).items()}
            chart(fv.viz.quality_vs_nfe_fig(curves, title="Quality vs Euler steps (energy "
                                            "distance to the data)", height=460,
                                            floor=noise_floor(cfg, N_EVAL)), "sp-nfe")
            st.caption("The exact v* is the best any trained flow can do, and it too needs "
                       "many Euler steps. Train the minibatch-OT coupling and compare the curves.")
    return run


def data_key(cfg) -> tuple:  # the data a run was trained on, so runs are compared on the same
    return cfg.source, cfg.target, cfg.n_data, cfg.seed, cfg.h, cfg.upload


def evaluate(cfg, key: str, state, x0_all, x1_all) -> None:
    """Quality vs NFE (Euler, energy distance to fresh data) and path metrics of a run."""
    res = results("sp_results")
    rk = (key, state.step)
    if rk not in res:
        dev = device(cfg)
        ref = exact_field(cfg).sample_target(N_EVAL, torch.Generator().manual_seed(99)) \
            if cfg.source == "gaussian" else x1_all[:N_EVAL]
        res[rk] = evaluate_flow(state.sampler_model.eval(), x0_all[:N_EVAL].to(dev),
                                ref.to(dev), N_PATHS)


def session_runs(cfg) -> dict[str, dict]:
    """This session's evaluated runs on the current data: label -> evaluation."""
    res = results("sp_results")
    out = {}
    for k, s in st.session_state.get("runs", {}).items():
        r = res.get((k, s.step))
        if r is not None and s.meta.get("data") == data_key(cfg):
            out[f"{s.meta['label']} · {s.step} steps"] = r
    return out


# --- Go deeper ----------------------------------------------------------------------------------
def ot_pairs(cfg, x0_all, x1_all) -> None:
    """Re-pairing the same points by minibatch OT (article §2.1)."""
    sec = pairs_section(x0_all, x1_all, cfg.seed, N_PAIRS, LIM, height=420)
    left, right = st.columns([5, 4])
    with left:
        p, _ = sec["Minibatch-OT"]
        chart(p.fig, "pairs-minibatch-ot", arrays=p.arrays)
    with right:
        st.markdown("Re-pair the **same** points to minimise the total squared length "
                    "(optimal transport on the batch): long lines that cut across each other "
                    "are exactly what it shortens.")
        st.dataframe([{"pairs": name, "lines that cross": f"{100 * m['crossing_fraction']:.1f} %",
                       "E‖x1 − x0‖²": f"{m['transport_cost']:.2f}"}
                      for name, (_, m) in sec.items()], key="ot-table", hide_index=True)
        st.caption("Fewer directions meet at a point, so the averaged field bends less: train "
                   "the minibatch-OT coupling in section 3 and compare the curves.")


def probe_point(cfg, x0_all, x1_all) -> None:
    """The weighted average of the lines through one point, and a Monte-Carlo check."""
    if cfg.source != "gaussian":
        st.info("The closed-form field needs the Gaussian source N(0, I) (sidebar).")
        return
    st.markdown("Every data point $y_i$ has one line through $x$ at time $t$, of weight "
                "$w_i$ (how likely that pair is). Their weighted average direction is "
                "$v^\\star(x, t)$.")
    c1, c2, c3, c4 = st.columns(4)
    px = c1.slider("Probe x", -3.0, 3.0, -0.5, 0.1, key="sp_px")
    py = c2.slider("Probe y", -3.0, 3.0, 0.5, 0.1, key="sp_py")
    t = c3.slider("Probe time t", 0.0, 0.95, 0.7, 0.05, key="sp_probe_t")
    k = c4.slider("Lines shown (largest weights)", 5, 200, 60, 5, key="sp_k")
    field, x = exact_field(cfg), torch.tensor([px, py])
    pr = probe(field, x, t, k)
    mc, near = monte_carlo_velocity(field, x, t, seed=cfg.seed + 7)
    left, right = st.columns([3, 2])
    with left:
        chart(fv.viz.probe_fig(x, pr["x0"], pr["x1"], pr["weights"], pr["v_star"],
                               pr["directions"], f"Lines through ({px:.1f}, {py:.1f}) at "
                               f"t = {t:.2f}", None, 540, scale=0.5), "probe")
    with right:
        v = pr["v_star"]
        st.markdown(f"**v\\*(x, t)** (closed form) = ({v[0]:.3f}, {v[1]:.3f})  \n"
                    f"**Monte-Carlo**: {near} of 200,000 random pairs pass within 0.15 of the "
                    f"probe; their mean direction = ({mc[0]:.3f}, {mc[1]:.3f})  \n"
                    f"**Spread** of the directions: tr Cov = {pr['spread']:.3f}")
        st.caption(f"The {k} lines shown carry {100 * pr['share']:.1f} % of the weight. The "
                   "average is shorter than the lines it averages: they disagree.")


def runs_detail(cfg, x0_all, x1_all) -> None:
    """This session's runs: the learned field over its error, and a table."""
    runs = session_runs(cfg)
    if not runs:
        st.caption("No run evaluated yet on this data: answer the question above, then train "
                   "one in section 3.")
        return
    floor = noise_floor(cfg, N_EVAL)
    st.dataframe([{"run": label} | {f"ED @{n}": format_distance(q, floor) for n, q in
                                     zip(*e["nfe"], strict=True) if n in (1, 4, 16, 128)} | {
                   "straightness": round(e["paths"]["straightness"], 4),
                   "crossings %": round(100 * e["paths"]["crossing_fraction"], 2)}
                  for label, e in runs.items()], key="runs-table", hide_index=True)
    st.caption(f"Energy distance (ED) of {N_EVAL} Euler samples to {N_EVAL} fresh samples of "
               "the data; path metrics from 200 RK4 trajectories.")
    key = st.session_state.get("straight_pairs:last_run")
    state = st.session_state["runs"].get(key)
    if state is None or state.step == 0:
        return
    r = results("sp_results").get((key, state.step))
    left, right = st.columns(2)
    if r is not None:
        with left:
            traj = r["paths"]["traj"].cpu()
            chart(fv.viz.trajectories_fig(traj, "Learned paths (RK4, 50 steps)", lim=LIM),
                  "learned-traj", traj=traj, ts=r["paths"]["ts"])
    if cfg.source != "gaussian":
        return
    t = st.session_state.get("sp_t", 0.5)
    pts, v, heat = learned_field(state.sampler_model.eval(), exact_field(cfg), t, LIM, GRID)
    with right:
        chart(fv.viz.field_fig(pts, v, f"Learned v_θ(x, t = {t:.2f}) over ‖v_θ − v*‖", heat=heat,
                               heat_name="‖v_θ − v*‖", lim=LIM, scale=0.25,
                               colorscale="Magma"), "learned-field")


DEEPER = {"Minibatch-OT pairs": ot_pairs, "Probe a point": probe_point,
          "Your runs in detail": runs_detail}

st.title("Straight pairs, curved flow")
st.caption("Article §1.2, §2 and §2.1 · rectified flow: x_t = (1 − t) x0 + t x1, target x1 − x0")
cfg = page_settings()
x1_all = data_points(cfg.target, cfg.n_data, cfg.seed, cfg.upload)
x0_all = source_points(cfg.source, len(x1_all), cfg.seed + 1, cfg.upload)
pairs, choice = pair_lines(x0_all, x1_all, cfg.seed)
if choice is None:
    waiting("Commit to a prediction above: the exact flow and a live training are drawn here.")
else:
    if cfg.source == "gaussian":
        exact_flow(cfg, x0_all, pairs)
    else:
        st.info("The closed-form field needs the Gaussian source N(0, I): pick it in the "
                "sidebar to see the exact field. Training below works for any source.")
    run = train(cfg, x0_all, x1_all)
section = deeper("sp_deeper", list(DEEPER))
if section:
    DEEPER[section](cfg, x0_all, x1_all)
if choice is not None:
    reproduce_box("straight_pairs", "sp_", {"This run's config": run.to_json()}, fm=True)
