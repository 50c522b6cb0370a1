"""Shortcut models: one network for 1 to 128 steps (article §5–5.2, §6.3.1; Frans et al.,
"One Step Diffusion via Shortcut Models", ICLR 2025).

The lesson: s(x, t, d) takes the step size as an input; trained, its 1- to 128-step samplers
start from the same noise and land alike; one jump of it against plain flow matching trained
for the same time. The rest (the field at several d, the identity at a point, target
templates, the loss parts, step costs) is in views/shortcut_deeper.py, behind "Go deeper".
"""

import streamlit as st
import torch

import flowviz as fv
from flowviz.analysis import NFES, quality_vs_nfe
from flowviz.experiment import FAST_SHORTCUT, same_time
from flowviz.methods.shortcut import TEMPLATES, ShortcutConfig, Template, TemplateError
from flowviz.models import MLPConfig
from flowviz.shortcut_lesson import calls_to_match, family
from flowviz.viz.style import format_distance
from views import shortcut_deeper
from views.cache import exact_field, exact_nfe_curve, noise_floor, source_points
from views.charts import chart
from views.reproduce import reproduce_box
from views.results import results
from views.state import device, page_settings, run_key, uploaded_points
from views.teach import ask, verdict, waiting
from views.training import live_training, partner_preset, same_time_caption, training_active

LIM, N_EVAL, N_PATHS = 4.5, 2000, 30
CLOUDS = (1, 2, 4, 128)  # the step counts whose samples are drawn
RULES = {"halves": "Two equal halves, weights ½, ½ (the paper, §5.1)",
         "two_thirds": "Unequal split ⅔ d + ⅓ d, weights ⅔, ⅓ (§6.3.1)",
         "thirds": "Three equal thirds, weights ⅓ each",
         "first_only": "Halves with weights 1, 0 (inconsistent)",
         "custom": "Custom template…"}
FEW, SOME, MANY = ("1 or 2: the jump buys nothing", "4 to 8",
                   "16 or more, or never within 128")


def parse(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.replace(";", ",").split(",") if v.strip())


def intro() -> None:
    st.title("Shortcut models: one network, 1 to 128 steps")
    st.caption("Article §5–5.2 and §6.3.1 · Frans et al., *One Step Diffusion via Shortcut "
               "Models* (ICLR 2025)")
    st.markdown(
        "Few steps along the *instantaneous* velocity $v(x, t)$ leave a curved flow. A shortcut "
        "model also takes the step size $d$ and learns the average direction over $[t, t+d]$: "
        "$x_{t+d}=x_t+d\\,s_\\theta(x_t,t,d)$, with $s_\\theta(x,t,0)=v(x,t)$.")


def template_choice(where) -> Template | None:
    """The self-consistency target rule (§6.3.1); None when a custom one is not valid."""
    rule = where.selectbox("Target rule (a learned integrator, §6.3.1)", list(RULES),
                           key="sc_rule", format_func=RULES.get)
    if rule != "custom":
        template = TEMPLATES[rule]
    else:
        a, b = where.columns(2)
        seg = a.text_input("Segments β_i (fractions of the step)", "0.5, 0.5", key="sc_seg")
        w = b.text_input("Weights w_i", "0.7, 0.3", key="sc_w")
        try:
            template = Template(parse(seg), parse(w))
        except (TemplateError, ValueError) as e:
            where.error(f"Not a valid template: {e}")
            return None
    if template.consistent:
        where.success(f"Consistent: {template.label()}. The weights equal the segment lengths, "
                      "so the true flow map is a fixed point.")
    else:
        where.warning(f"Inconsistent composition: {template.label()}. "
                      + "; ".join(template.problems()) + ". The true flow map is no fixed "
                      "point: train it and compare under Go deeper › Target templates.")
    return template


def shortcut_run(cfg) -> fv.ShortcutRun | None:
    """The run the settings describe (defaults: the preset FAST_SHORTCUT on the sidebar data)."""
    with st.expander("Training settings", icon=":material/tune:"):
        template = template_choice(st)
        c1, c2, c3 = st.columns(3)
        target = c1.selectbox("Target from", ["ema", "stopgrad"], key="sc_target",
                              index=["ema", "stopgrad"].index(FAST_SHORTCUT.shortcut.target),
                              format_func={"ema": "EMA copy", "stopgrad": "stop-gradient"}.get)
        d_grid = c2.selectbox("Step sizes d", ["pow2", "steps"], key="sc_grid",
                              format_func={"pow2": "powers of two", "steps": "any M ≤ 128"}.get,
                              help="Powers of two: d ∈ {1, ½, …, 1/128}. Any step count: d = "
                                   "1/M for any integer M ≤ 128, so M = 3 is trained too.")
        share = c3.select_slider("Self-consistency share", [0.0, 0.1, 0.25, 0.5, 0.75],
                                 FAST_SHORTCUT.shortcut.sc_frac, key="sc_frac",
                                 help="Fraction of each batch on self-consistency (the paper: "
                                      "about ¼); the rest is flow matching at d = 0.")
        steps = c1.select_slider("Steps", [500, 1000, 2000, 3000, 5000],
                                 FAST_SHORTCUT.optim.steps, key="sc_steps")
        hidden = c2.select_slider("Width", [64, 128, 256], FAST_SHORTCUT.model.hidden,
                                  key="sc_hidden")
        lr = c3.select_slider("Learning rate", [1e-3, 2e-3, 3e-3, 5e-3, 8e-3],
                              FAST_SHORTCUT.optim.lr, key="sc_lr")
        if template is None:
            return None
        run = fv.ShortcutRun(
            source=cfg.source, target=cfg.target, n_data=cfg.n_data, data_seed=cfg.seed,
            h=cfg.h, batch=FAST_SHORTCUT.batch, model=MLPConfig(hidden=hidden, n_scalars=2),
            optim=fv.OptimConfig(steps=steps, lr=lr, seed=cfg.seed),
            shortcut=ShortcutConfig(sc_frac=share, target=target, d_grid=d_grid,
                                    template=template))
        if off := run.shortcut.off_grid():
            shown = ", ".join(f"s(·, ·, {h:.3g}) for D = 1/{m}" for m, h in off[:3])
            st.info(f"This target asks for step sizes that no target trains: {shown}"
                    f"{' …' if len(off) > 3 else ''} ({len(off)} in all). The network only "
                    "interpolates in d there. "
                    + ("'Any M ≤ 128' trains more step sizes." if d_grid == "pow2" else ""))
    return run


def train(cfg, data_key: tuple):
    """Section 1: the settings and the live run (the preset opens finished). Returns the run,
    its key and its state; stops the page until there is a trained model."""
    st.header("1 · Train s(x, t, d)")
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.markdown("No teacher for big steps: one step of $2d$ must equal two of $d$ "
                    "(self-consistency, §5.1), with $x' = x_t + d\\,s(x_t,t,d)$:")
        st.latex(r"\begin{aligned}s(x_t,t,2d)&=\tfrac12\,s(x_t,t,d)\\"
                 r"&+\tfrac12\,s(x',t+d,d)\end{aligned}")
        st.markdown("Flow matching at $d = 0$ on most of each batch, self-consistency on the "
                    "rest, $d$ a power of two down to $1/128$; the big-step targets come from "
                    "the model itself (stop-gradient or EMA copy).")
        run = shortcut_run(cfg)
    if run is None:
        st.stop()
    key = run_key("sc", run, cfg.upload, cfg.device)
    rule = st.session_state.get("sc_rule", "halves").replace("_", " ")
    label = f"shortcut, {rule}, {run.shortcut.target}, {run.optim.steps} steps"
    with right:
        state = live_training(key, lambda: fv.build_shortcut(run, device(cfg),
                                                             uploaded_points()),
                              meta={"label": label, "data": data_key, "kind": "shortcut"},
                              loss_keys=("loss",), preset=run)
    with left:
        reproduce_box("shortcut", "sc_", {"This run's config": run.to_json()})
    if state is None or state.step == 0:
        st.info("**Press Train live** to train s(x, t, d) on this data (a few thousand steps). "
                "Then the page samples it with 1 to 128 steps from the same noise and sets its "
                "one jump against plain flow matching trained for the same time.")
        st.stop()
    if training_active(key) and not state.done:
        st.info("Training… the samplers appear when the run finishes or when you pause it.")
        st.stop()
    return run, key, state


def the_family(r: dict, floor: float) -> None:
    st.header("2 · One network, a family of samplers")
    c1, c2 = st.columns([1, 1])
    with c1:
        chart(fv.viz.family_fig(r["paths"], f"Paths of {N_PATHS} noise points, M = 1 … 128",
                                N_PATHS, 3.5, height=380), "sc-family",
              traj=r["paths"][max(NFES)], arrays={f"traj_M{m}": r["paths"][m] for m in NFES})
    with c2:
        chart(fv.viz.clouds_grid_fig(
            r["ref"], {m: r["samples"][m][:1000] for m in CLOUDS},
            {m: f"M = {m} · {format_distance(r['ed'][m], floor)}" for m in CLOUDS},
            cols=2, lim=LIM, panel=155), "sc-clouds")
    st.caption(f"The same noise, M steps of d = 1/M (M network calls). Titles: energy distance "
               f"to the data (lower is better), ≤ noise below its sampling noise ({floor:.4f}).")


def answer_for(calls: int | None) -> str:
    return MANY if calls is None or calls >= 16 else FEW if calls <= 2 else SOME


def against_fm(run, cfg, key, data_key, r, x0, ref, floor) -> None:
    st.header("3 · One jump against plain flow matching")
    choice = ask("sc-fm", "Plain flow matching (the same network without the d input, the same "
                 "data, trained for the **same time**) samples with Euler, one network call a "
                 "step. How many calls does it need to land as close to the data as the "
                 "shortcut model's **single** jump?", [FEW, SOME, MANY], "§5.2")
    if choice is None:
        waiting("Commit to a prediction: the plain-FM run and its curve are drawn here.")
        return
    fm_key, dev = f"scfm:{key}", device(cfg)

    def build_fm_same_time():
        fm_run, cost = same_time(run, n=15, reps=3, device=dev, uploaded=uploaded_points())
        fm_state = fv.build_fm(fm_run, dev, uploaded_points())
        fm_state.meta["cost"] = cost
        return fm_state

    ready = st.session_state.get("runs", {}).get(fm_key)
    live = partner_preset(key) is None or st.session_state.get(f"live:{fm_key}")
    opened = bool(live) and not (ready is not None and ready.done)  # a finished preset: folded
    with st.expander("Plain flow matching, trained for the same time", expanded=opened,
                     icon=":material/model_training:"):
        fm = live_training(fm_key, build_fm_same_time, preset=partner_preset(key),
                           meta={"label": "plain FM, Euler", "data": data_key, "kind": "fm"})
        if fm is not None and fm.step > 0:
            same_time_caption(fm, "shortcut", "FM", run.optim.steps)
    if fm is None or fm.step == 0 or training_active(fm_key):
        st.info("Train plain flow matching (above): its curve answers the question.")
        return
    fm_res, fk = results("sc_fm_results"), (fm_key, fm.step)
    if fk not in fm_res:
        fm_res[fk] = quality_vs_nfe(fm.sampler_model.eval(), x0, ref)
    fm_nfes, fm_eds = fm_res[fk]
    curves = {"Shortcut, M steps": (list(NFES), [r["ed"][m] for m in NFES]),
              "plain FM, Euler (same time)": (fm_nfes, fm_eds)}
    if cfg.source == "gaussian":
        curves["exact v*, Euler (perfect FM)"] = exact_nfe_curve(cfg, N_EVAL)
    one = r["ed"][1]
    calls = calls_to_match(fm_nfes, fm_eds, max(one, floor))
    c1, c2 = st.columns([3, 2])
    with c1:
        chart(fv.viz.quality_vs_nfe_fig(curves, title="Energy distance to the data vs network "
                                        "calls", height=400, floor=floor), "sc-quality")
    with c2:
        k1, k2 = st.columns(2)
        k1.metric("Shortcut, one jump", format_distance(one, floor))
        k2.metric("Plain FM, one step", format_distance(fm_eds[0], floor))
        k1.metric("FM calls to match", calls or "> 128")
        reached = f"at {calls} calls" if calls else "at no budget up to 128"
        why = ("Its one step follows the tangent at t = 0, which points at the data mean; "
               "s(x, 0, 1) learned the whole chord from the model's own half steps, so one jump "
               "lands where the curved flow ends." if calls is None or calls > 2 else
               "This shortcut model's jump is no better than a short FM run: train it longer, "
               "or look at its target rule under Go deeper.")
        verdict("sc-fm", answer_for(calls),
                f"Plain flow matching reaches the shortcut's one-jump distance {reached}. {why}")


intro()
cfg = page_settings()
dev = device(cfg)
data_key = (cfg.source, cfg.target, cfg.n_data, cfg.seed, cfg.h, cfg.upload)
run, key, state = train(cfg, data_key)
model = state.sampler_model.eval()
x0 = source_points(cfg.source, N_EVAL, cfg.seed + 1, cfg.upload).to(dev)
ref = exact_field(cfg).sample_target(N_EVAL, torch.Generator().manual_seed(99)).float().to(dev)
floor = noise_floor(cfg, N_EVAL)
res, rk = results("sc_results"), (key, state.step)
if rk not in res:
    with st.spinner("Sampling with M = 1 … 128 steps"):
        res[rk] = family(model, x0, ref, NFES, N_PATHS) | {"ref": ref[:1000].cpu()}
the_family(res[rk], floor)
against_fm(run, cfg, key, data_key, res[rk], x0, ref, floor)
shortcut_deeper.show(model, state, key, data_key, cfg, x0, ref, floor)
