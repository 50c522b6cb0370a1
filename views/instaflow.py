"""InstaFlow: conditional reflow, then one-step distillation (article §4-4.4; Liu et al. 2024).

A condition you can read (a part of the target, by name) plays the text prompt. A teacher (the
exact conditional VP-diffusion PF-ODE, or a trained conditional 1-RF) makes (x0, x1, c) triples
in 20-50 steps; a conditional 2-RF is trained on them; a one-step student is distilled from the
2-RF's endpoints, and, as the paper's control, another straight from the teacher's triples.
Then: per-condition quality, the rare-condition coverage problem and its fixes, latency.
"""

import dataclasses

import pandas as pd
import streamlit as st
import torch

import flowviz as fv
from flowviz import presets
from flowviz.device import describe
from flowviz.methods.instaflow import (
    CONDITIONS,
    FIXES,
    ConditionalExact,
    InstaFlowPipeline,
    InstaFlowRun,
    coupling_report,
    guided,
    latency,
    per_condition_quality,
)
from flowviz.methods.reflow import LOSSES
from flowviz.paths import VPPath
from flowviz.solvers import FIXED
from flowviz.viz.instaflow import conditioned_paths_fig, latency_fig, per_condition_fig
from views.cache import cached
from views.charts import chart
from views.reproduce import reproduce_box
from views.results import results
from views.state import device, page_settings, run_key
from views.teach import notice, predict
from views.training import live_training

LIM, N_SHOW, N_EVAL = 4.5, 300, 1000
TEACHER_NAMES = {"exact_vp": "exact conditional VP-diffusion PF-ODE (no training)",
                 "rf": "trained conditional 1-RF"}
FIX_NAMES = {"none": "no fix", "reweight": "reweight batches (repeat its few triples)",
             "resample": "resample the prompts (balanced triples)"}
STAGES = ("teacher", "2-RF", "student from 2-RF", "student from teacher")
DATA_NAMES = {"8gaussians": "8 Gaussians by compass direction", "moons": "Moons: upper / lower",
              "two_mode": "Two modes: top / bottom", "rings": "Rings by radius",
              "two_spirals": "Two spirals: A / B", "checkerboard": "Checkerboard by cell"}


@cached(show_spinner="Solving the exact conditional PF-ODE…", max_entries=16)
def exact_preview(target: str, n_data: int, h: float, seed: int, solver: str, steps: int,
                  w: float, n: int = 120):
    """Paths of the exact guided teacher for each condition, from the same noise."""
    x, lab = fv.data.sample(target, n_data, seed + 1)
    k = len(CONDITIONS[target])
    f = guided(ConditionalExact(x, lab, k, VPPath(), h), w)
    x0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed + 7))
    out = {}
    for c, name in enumerate(CONDITIONS[target]):
        lc = torch.full((n,), c)
        out[name] = fv.solve(lambda z, t, lc=lc: f(z, t, label=lc), x0, solver, steps,
                             t1=VPPath().t_max, return_traj=True).traj
    return out


def teacher_paths(pipe: InstaFlowPipeline, n: int = 120) -> dict:
    """The same picture for a pipeline's (trained) teacher."""
    x0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(7)).to(pipe.device)
    r, out = pipe.run, {}
    for c, name in enumerate(CONDITIONS[r.target]):
        lc = torch.full((n,), c, device=pipe.device)
        out[name] = fv.solve(lambda z, t, lc=lc: pipe.teacher(z, t, label=lc), x0,
                             r.teacher_solver, r.teacher_steps, t1=pipe.t_end,
                             return_traj=True).traj.cpu()
    return out


@st.cache_resource(show_spinner="Loading the preset…", max_entries=4)
def preset_jobs(name: str, dev: str) -> dict:
    """A preset pipeline's finished phases (read-only, shared by every session)."""
    return presets.load(presets.specs()[name], dev)


def open_preset(key: str, run: InstaFlowRun, label: str) -> None:
    """Put the preset pipeline with exactly this config into runs[key], if there is one."""
    runs = st.session_state.setdefault("runs", {})
    if key in runs or not presets.enabled() or st.session_state.get(f"live:{key}"):
        return
    hit = presets.find(("student from teacher", run))
    if hit is None:
        return
    pipe = InstaFlowPipeline(run, dev)
    pipe.jobs, pipe.status = dict(preset_jobs(hit[0].name, str(dev))), "done"
    pipe.meta.update(preset=hit[0].name, label=label, run=run)
    runs[key] = pipe


def evaluate(key: str, pipe: InstaFlowPipeline) -> dict:
    """Per-condition quality, couplings and latency of a finished pipeline (once per run; a
    preset's once per server)."""
    res, rk = results("if_results"), (key, "done")
    if rk not in res:
        r = pipe.run
        steps = {"teacher": r.teacher_steps}
        q = {s: per_condition_quality(pipe, s, steps.get(s, 1), N_EVAL, r.seed) for s in STAGES}
        fid = {s: per_condition_quality(pipe, s, 1, N_EVAL, r.seed, ref="teacher")
               for s in STAGES[2:]}
        lat = [(f"teacher · {r.teacher_steps} steps", "teacher", r.teacher_steps),
               *((f"2-RF · {m} step{'s' * (m > 1)}", "2-RF", m) for m in (1, 2, 4, 8)),
               ("student · 1 step", "student from 2-RF", 1)]
        rows = []
        for label, who, m in lat:
            ed = q[who] if m == steps.get(who, 1) else per_condition_quality(
                pipe, who, m, N_EVAL, r.seed)
            rows.append((label, 1000 * latency(pipe, who, m), sum(ed) / len(ed)))
        res[rk] = {"q": q, "fidelity": fid, "latency": rows, "coupling": coupling_report(pipe),
                   "machine": describe(pipe.device)}
    return res[rk]


def mean(v) -> float:
    return sum(v) / len(v)


st.title("InstaFlow: straighten with reflow, then distil to one step")
st.caption("Article §4-4.4 · Liu et al., InstaFlow: One Step is Enough for High-Quality "
           "Diffusion-Based Text-to-Image Generation (ICLR 2024)")
cfg = page_settings()
dev = device(cfg)
notice("A teacher needs 20-50 steps; the student needs one network call. Compare the two "
       "students: one distilled from the 2-RF's almost straight map, one straight from the "
       "teacher, with the same budget. Then make one condition rare and watch its one-step "
       "quality, and what rebalancing the prompts does.", "§4.1-4.4")

# --- 1. The teacher ------------------------------------------------------------------------------
st.header("1 · The teacher: a conditional flow, 20-50 steps")
options = list(CONDITIONS)
c1, c2, c3, c4 = st.columns([1.3, 1.3, 1, 1])
target = c1.selectbox("Target made of named parts", options, index=options.index("8gaussians"),
                      key="if_target", format_func=DATA_NAMES.get,
                      help="The condition c (the 'prompt') is the name of a part. This page "
                           "has its own target: InstaFlow needs one with named parts.")
names = CONDITIONS[target]
teacher = c2.selectbox("Teacher", list(TEACHER_NAMES), key="if_teacher",
                       format_func=TEACHER_NAMES.get,
                       help="The article's teacher is Stable Diffusion, a pretrained diffusion "
                            "model. The exact PF-ODE of the data plays it with no training.")
solver = c3.selectbox("Teacher solver", list(FIXED), key="if_solver")
t_steps = c4.slider("Teacher steps", 20, 50, 25, 5, key="if_tsteps")
g1, g2 = st.columns([1, 1.2])
with g1:
    w = st.slider("Classifier-free guidance w", 0.0, 4.0, 1.0, 0.25, key="if_w")
    st.latex(r"v_w = v_\varnothing + w\,(v_c - v_\varnothing),\quad "
             r"v_c = v(x, t \mid c)")
    st.caption("w = 1: the plain conditional field; w = 0: ignore the prompt; w > 1 pushes "
               "samples away from the other parts (sharper, less diverse). The trained teacher "
               "learns v(x, t | ∅) by dropping the label 10 % of the time.")
    st.latex(r"\frac{dx}{dt} = v_T(x, t \mid c),\quad x_0\sim\mathcal N(0, I)"
             r"\ \Rightarrow\ (x_0,\ x_1,\ c)")
base = InstaFlowRun(target=target, n_data=max(cfg.n_data, 2000), h=cfg.h, seed=cfg.seed,
                    teacher=teacher, teacher_solver=solver, teacher_steps=t_steps, guidance=w)

# --- 2. The pipeline -----------------------------------------------------------------------------
st.header("2 · Triples, text-conditioned 2-RF, one-step students")
c1, c2, c3, c4 = st.columns(4)
n_triples = c1.select_slider("Triples (x0, x1, c)", [2000, 4000, 8000, 16000], 8000,
                             key="if_triples")
rf_steps = c2.select_slider("2-RF steps", [300, 500, 1000, 1500, 2000, 3000], 1500,
                            key="if_rfsteps")
s_steps = c3.select_slider("Student steps (each)", [200, 500, 1000, 2000], 1000,
                           key="if_ssteps")
s_loss = c4.selectbox("Distillation loss D", list(LOSSES), key="if_loss",
                      help="InstaFlow uses LPIPS, a perceptual distance: the image-space version "
                           "of these. Pseudo-Huber is what Lee et al. pair with it.")
st.latex(r"\tilde v = \arg\min_v\ \mathbb E_{x_0, c}\ D\big(\mathrm{ODE}[v_{2\text{-RF}}]"
         r"(x_0\mid c),\ x_0 + v(x_0\mid c)\big)")
st.markdown("**Coverage (§4.4).** The triples come from prompts; a prompt that is rarely asked "
            "gives few triples. Choose a rare condition and how rare it is:")
c1, c2, c3 = st.columns([1, 1.2, 1.6])
rare_opt = ["none", *names]
rare_name = c1.selectbox("Rare condition", rare_opt, key="if_rare")
share = c2.select_slider("Its share of the triples", [0.0, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                      0.05], 0.002, key="if_share",
                         disabled=rare_name == "none",
                         format_func=lambda v: f"{100 * v:g} %" + (" (unseen)" if v == 0 else ""))
fix = c3.radio("Fix", list(FIXES), key="if_fix", format_func=FIX_NAMES.get,
               disabled=rare_name == "none")
rare = rare_opt.index(rare_name) - 1
run = dataclasses.replace(
    base, n_triples=n_triples, rare=rare, rare_share=share if rare >= 0 else 0.01,
    fix=fix if rare >= 0 else "none", student_steps=s_steps, student_loss=s_loss,
    reflow=dataclasses.replace(base.reflow, optim=dataclasses.replace(base.reflow.optim,
                                                                      steps=rf_steps)))
key = run_key("if", run, str(dev))
label = (f"{TEACHER_NAMES[teacher].split(' (')[0]} · w={w:g} · {t_steps} {solver} steps · "
         + (f"{names[rare]} at {100 * share:g} % · {FIX_NAMES[run.fix]}" if rare >= 0
            else "balanced prompts"))
open_preset(key, run, label)
pipe = live_training(key, lambda: InstaFlowPipeline(run, dev), chunk=1,
                     meta={"label": label, "run": run}, advance=lambda s, n: s.advance(),
                     progress=lambda s: s.progress(), start="Run the pipeline")
reproduce_box("instaflow", "if_", {
    "This pipeline's config: save it as `run.json`, then `python -m flowviz instaflow --config "
    "run.json --out instaflow.pt`": run.to_json()})
if pipe is None:
    st.info("Press **Run the pipeline**: it trains each phase in turn (about 30-60 s on a "
            "laptop CPU) and can be paused. Finished runs are kept for the comparison below.")

with g2:
    if teacher == "exact_vp":
        paths = exact_preview(target, base.n_data, cfg.h, cfg.seed, solver, t_steps, w)
    elif pipe is not None and "teacher" in pipe.jobs and pipe.jobs["teacher"].done:
        paths = teacher_paths(pipe)
    else:
        paths = None
        st.info("The trained teacher appears here once phase 1 of the pipeline has run.")
    if paths is not None:
        chart(conditioned_paths_fig(paths, f"Teacher paths per condition (w = {w:g}, "
                                    f"{t_steps} {solver} steps, same noise)", LIM),
              f"if-teacher-{target}")

# --- 3. Results ----------------------------------------------------------------------------------
if pipe is not None and pipe.done and pipe.status != "nan":
    st.header("3 · One step, per condition")
    res = evaluate(key, pipe)
    q, counts = res["q"], torch.bincount(pipe.cond.cpu(), minlength=len(names)).tolist()
    chart(per_condition_fig(names, {f"{s}" + (f" ({pipe.run.teacher_steps} steps)"
                                              if s == "teacher" else " (1 step)"): q[s]
                                    for s in STAGES},
                            "Energy distance to each condition's data (lower is better)",
                            rare=rare if rare >= 0 else None, hline=0.01),
          f"if-percond-{key}")
    table = pd.DataFrame({"condition": names, "triples": counts,
                          **{s: q[s] for s in STAGES},
                          **{f"{s} vs teacher": v for s, v in res["fidelity"].items()}})
    st.dataframe(table.style.format(precision=4), hide_index=True)
    st.caption(f"{N_EVAL} samples per condition against {N_EVAL} fresh data points of that "
               "part; 'vs teacher' compares with the teacher's own samples for the condition "
               "(what the student was taught). The energy distance's sampling noise at this size "
               "is about 0.001.")
    k1, k2, k3, k4 = st.columns(4)
    k1.metric("Student from 2-RF: mean ED", f"{mean(q['student from 2-RF']):.4f}")
    k2.metric("Student from teacher: mean ED", f"{mean(q['student from teacher']):.4f}")
    k3.metric("2-RF, 1 Euler step: mean ED", f"{mean(q['2-RF']):.4f}")
    k4.metric("Pipeline wall time", f"{pipe.seconds:.1f} s",
              help=" · ".join(f"{p}: {s:.1f} s" for p, s in pipe.phase_seconds.items())
              + (" (recorded when the preset was trained)" if "preset" in pipe.meta else ""))
    if rare >= 0:
        others = [i for i in range(len(names)) if i != rare]
        s2 = q["student from 2-RF"]
        st.markdown(f"**Coverage:** {names[rare]} got **{counts[rare]}** of {sum(counts)} "
                    f"triples. Its one-step ED is **{s2[rare]:.4f}**, against "
                    f"{mean([s2[i] for i in others]):.4f} on average for the other conditions "
                    f"({FIX_NAMES[run.fix]}).")

    st.subheader("Why the two students differ (or do not)")
    cr = res["coupling"]
    st.dataframe(pd.DataFrame([{
        "distilled from": {"triples": "teacher's triples", "2-RF endpoints": "2-RF endpoints"}[k],
        "path straightness (0: straight)": v["straightness"],
        "E‖x1 − x0‖²": v["transport_cost"],
        "crossing lines": v["crossing_fraction"],
        "NFE / pair": v["nfe_per_pair"],
        "‖x1 − x1 teacher‖": v["map_change"],
        "student's final loss": v["student_loss"]} for k, v in cr.items()]).style.format(
        precision=4), hide_index=True)
    change = cr["2-RF endpoints"]["map_change"]
    st.caption("The paper finds that distilling Stable Diffusion directly fails and distilling "
               "the 2-RF works: reflow straightens the paths and makes the noise-to-image map "
               "easier for one step to fit. A student only sees the map x0 → x1, not the "
               f"paths: here the 2-RF's endpoints lie {change:.3f} on average from the "
               "teacher's for the same noise, so both students fit nearly the same map, and "
               "the curved paths of the teacher cost it nothing. On images the teacher's map is "
               "far less regular than one simple part per condition.")

    st.subheader("Latency vs quality")
    rows = res["latency"]
    c1, c2 = st.columns([1.2, 1])
    with c1:
        chart(latency_fig(rows, "Wall time per 10 000 samples vs quality"), f"if-lat-{key}")
    c2.dataframe(pd.DataFrame([{"sampler": a, "ms / 10k samples": b, "mean ED": c}
                               for a, b, c in rows]).style.format(precision=4), hide_index=True)
    c2.caption(f"Best of 3 on {res['machine']}, conditions mixed. The teacher's cost grows "
               "with its steps; the student is one call whatever the target.")
    ed_t, ed_s = mean(q["teacher"]), mean(q["student from 2-RF"])
    predict("if-students",
            "Same budget, same triples' noise: which one-step student comes closer to the "
            "data here?",
            ["the student from the 2-RF", "the student from the teacher", "a tie (within 0.001)"],
            "a tie (within 0.001)" if abs(mean(q["student from teacher"]) - ed_s) <= 0.001
            else ("the student from the 2-RF" if ed_s < mean(q["student from teacher"])
                  else "the student from the teacher"),
            f"Measured mean ED: from the 2-RF **{ed_s:.4f}**, from the teacher "
            f"**{mean(q['student from teacher']):.4f}** (teacher itself {ed_t:.4f}). The gap the "
            "paper reports on images comes from a teacher map that is hard to fit in one step; "
            "the table above shows how curved and costly each map is here.", "§4.3")

# --- 4. Runs so far ------------------------------------------------------------------------------
evaluated = results("if_results")
done = {k: s for k, s in st.session_state.get("runs", {}).items()
        if k.startswith("if:") and s.done and s.status != "nan"
        and evaluated.get((k, "done")) is not None}
if len(done) > 1:
    st.header("4 · Every finished run")
    rows = []
    for k, s in done.items():
        q = evaluated.get((k, "done"))["q"]
        r = s.run
        rows.append({"run": s.meta["label"], "target": r.target,
                     "student from 2-RF": mean(q["student from 2-RF"]),
                     "student from teacher": mean(q["student from teacher"]),
                     "rare condition (from 2-RF)": q["student from 2-RF"][r.rare]
                     if r.rare >= 0 else None,
                     "pipeline s": s.seconds})
    st.dataframe(pd.DataFrame(rows).style.format(precision=4), hide_index=True)
