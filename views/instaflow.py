"""InstaFlow: conditional reflow, then one-step distillation (article §4-4.4; Liu et al. 2024).

A condition you can read (a part of the target, by name) plays the text prompt. The lesson: a
teacher makes (x0, x1, c) triples in 20-50 steps, a conditional 2-RF is trained on them, and a
one-step student is distilled from the 2-RF; is one step enough, for every condition? Then the
coverage problem: a prompt that is rarely asked gets few triples. The student distilled straight
from the teacher, latency and the rebalancing fixes are in "Go deeper" (views/instaflow_deeper).
"""

import dataclasses
from statistics import fmean as mean

import streamlit as st
import torch

from flowviz.methods.instaflow import (
    CONDITIONS,
    FIXES,
    InstaFlowPipeline,
    InstaFlowRun,
    one_step_report,
    teacher_paths,
)
from flowviz.methods.reflow import LOSSES
from flowviz.solvers import FIXED
from flowviz.viz.instaflow import conditioned_paths_fig, per_condition_fig
from flowviz.viz.style import format_distance
from views import instaflow_deeper as deeper_sections
from views.cache import cached
from views.charts import chart
from views.instaflow_preset import open_preset
from views.reproduce import reproduce_box
from views.results import results
from views.state import device, page_settings, run_key
from views.teach import ask, deeper, notice, verdict, waiting
from views.training import live_training, training_active

LIM, N_EVAL = 4.5, 1000
TEACHER_NAMES = {"exact_vp": "exact VP-diffusion PF-ODE (no training)",
                 "rf": "trained conditional 1-RF"}
FIX_NAMES = {"none": "no fix", "reweight": "reweight batches",
             "resample": "resample the prompts"}
DATA_NAMES = {"8gaussians": "8 Gaussians by compass direction", "moons": "Moons: upper / lower",
              "two_mode": "Two modes: top / bottom", "rings": "Rings by radius",
              "two_spirals": "Two spirals: A / B", "checkerboard": "Checkerboard by cell"}
CLOSE, BETWEEN, NO_GAIN = ("as close as the many-step teacher",
                           "closer than one 2-RF step, not as close as the teacher",
                           "no closer than one Euler step of the 2-RF")


@cached(show_spinner="Solving the exact conditional PF-ODE…", max_entries=16)
def exact_teacher_paths(run: InstaFlowRun) -> dict:
    """The exact teacher needs no training: its paths for the run's settings, on the CPU."""
    return teacher_paths(InstaFlowPipeline(run, torch.device("cpu")))


def teacher_section(cfg):
    """The teacher: this page's own target (parts with names), a guided conditional flow.
    Returns the run's first settings and the column where its paths are drawn."""
    st.header("1 · The teacher: 20-50 steps per sample")
    left, right = st.columns([1, 1.25])
    options = list(CONDITIONS)
    target = left.selectbox("Target (this page's own: its parts are the prompts)", options,
                            index=options.index("8gaussians"), key="if_target",
                            format_func=DATA_NAMES.get,
                            help="The condition c (the 'prompt') is the name of a part. The "
                                 "sidebar's target does not apply here.")
    teacher = left.selectbox("Teacher", list(TEACHER_NAMES), key="if_teacher",
                             format_func=TEACHER_NAMES.get,
                             help="The article's teacher is Stable Diffusion, a pretrained "
                                  "diffusion model. The exact PF-ODE of the data plays it.")
    c1, c2 = left.columns(2)
    solver = c1.selectbox("Solver", list(FIXED), key="if_solver")
    steps = c2.slider("Steps", 20, 50, 25, 5, key="if_tsteps")
    w = left.slider("Classifier-free guidance w", 0.0, 4.0, 1.0, 0.25, key="if_w",
                    help="w = 0 ignores the prompt; w > 1 pushes samples away from the other "
                         "parts. The trained teacher learns v(x, t | ∅) by dropping the label "
                         "10 % of the time.")
    left.latex(r"v_w = v_\varnothing + w\,(v_c - v_\varnothing)")
    run = InstaFlowRun(target=target, n_data=max(cfg.n_data, 2000), h=cfg.h, seed=cfg.seed,
                       teacher=teacher, teacher_solver=solver, teacher_steps=steps, guidance=w)
    left.caption("Each (noise x0, prompt c) solved for 20-50 steps gives a triple (x0, x1, c). "
                 f"Data: {run.n_data} points (the sidebar's N, at least 2000), h = {run.h:g}.")
    if teacher == "exact_vp":
        with right:
            paths_chart(exact_teacher_paths(run), run)
    return run, right


def paths_chart(paths: dict, run: InstaFlowRun) -> None:
    chart(conditioned_paths_fig(paths, f"Teacher paths per condition (w = {run.guidance:g}, "
                                f"{run.teacher_steps} steps)", LIM, height=400),
          f"if-teacher-{run.target}-{run.teacher}")


def trained_teacher(right, pipe) -> None:
    """A trained teacher's paths appear once phase 1 of the pipeline has run."""
    with right:
        if pipe is not None and "teacher" in pipe.jobs and pipe.jobs["teacher"].done:
            paths_chart(teacher_paths(pipe), pipe.run)
        else:
            st.info("The trained teacher's paths appear here once phase 1 of the pipeline "
                    "has run.")


def pipeline_section(base: InstaFlowRun, dev):
    """Triples -> conditional 2-RF -> one-step student, with how often each prompt is asked."""
    st.header("2 · Reflow on the triples, then distil to one step")
    st.latex(r"(x_0, x_1, c) \xrightarrow{\text{reflow}} v_{2\text{-RF}}(\cdot \mid c)"
             r"\xrightarrow{\text{distil}} x_0 + \tilde v(x_0 \mid c)")
    names = CONDITIONS[base.target]
    c1, c2, c3 = st.columns([1, 1.1, 1.2])
    rare_name = c1.selectbox("Rare prompt (§4.4)", ["none", *names], key="if_rare",
                             help="How often each condition is asked among the triples.")
    share = c2.select_slider("Its share of the triples", [0.0, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                          0.05], 0.002, key="if_share",
                             disabled=rare_name == "none",
                             format_func=lambda v: f"{100 * v:g} %" + (" (unseen)" * (v == 0)))
    fix = c3.selectbox("Fix", list(FIXES), key="if_fix", format_func=FIX_NAMES.get,
                       disabled=rare_name == "none",
                       help="Detail in Go deeper › Rare-prompt fixes.")
    with st.expander("Training budget"):
        b1, b2, b3, b4 = st.columns(4)
        n_triples = b1.select_slider("Triples", [2000, 4000, 8000, 16000], 8000,
                                     key="if_triples")
        rf_steps = b2.select_slider("2-RF steps", [300, 500, 1000, 1500, 2000, 3000], 1500,
                                    key="if_rfsteps")
        s_steps = b3.select_slider("Student steps", [200, 500, 1000, 2000], 1000,
                                   key="if_ssteps")
        s_loss = b4.selectbox("Distillation loss", list(LOSSES), key="if_loss",
                              help="InstaFlow uses LPIPS, a perceptual distance on images.")
    rare = ["none", *names].index(rare_name) - 1
    run = dataclasses.replace(
        base, n_triples=n_triples, rare=rare, rare_share=share if rare >= 0 else 0.01,
        fix=fix if rare >= 0 else "none", student_steps=s_steps, student_loss=s_loss,
        reflow=dataclasses.replace(base.reflow, optim=dataclasses.replace(
            base.reflow.optim, steps=rf_steps)))
    key = run_key("if", run, str(dev))
    label = (f"{TEACHER_NAMES[base.teacher].split(' (')[0]} · w={base.guidance:g} · "
             + (f"{names[rare]} at {100 * share:g} % · {FIX_NAMES[run.fix]}" if rare >= 0
                else "balanced prompts"))
    open_preset(key, run, label, dev)
    pipe = st.session_state["runs"].get(key)
    finished = pipe is not None and pipe.done and not training_active(key)
    where = "its preset" if finished and "preset" in pipe.meta else "trained here"
    with st.expander(f"The pipeline: finished ({where}, {pipe.seconds:.0f} s) · retrain, "
                     "reproduce" if finished else "The pipeline: run it here (about a minute)",
                     expanded=not finished):
        pipe = live_training(key, lambda: InstaFlowPipeline(run, dev), chunk=1,
                             meta={"label": label, "run": run},
                             advance=lambda s, n: s.advance(), progress=lambda s: s.progress(),
                             start="Run the pipeline")
        reproduce_box("instaflow", "if_", {
            "This pipeline's config: save it as `run.json`, then `python -m flowviz instaflow "
            "--config run.json --out instaflow.pt`": run.to_json()})
    return key, pipe


def one_step_section(key: str, pipe, steps: int) -> dict | None:
    """Predict, then reveal: is one step enough, condition by condition?"""
    st.header("3 · One step, per condition")
    choice = ask("if-one-step",
                 f"The teacher takes {steps} steps per sample; the student takes one network "
                 "call. Averaged over the conditions, how close "
                 "do its samples come to each condition's data?",
                 [CLOSE, BETWEEN, NO_GAIN], "§4.3")
    if pipe is None or not pipe.done or pipe.status == "nan":
        waiting("Run the pipeline above (or open its preset at the default settings): the "
                "answer is measured on its student.")
        return None
    if choice is None:
        waiting()
        return None
    res, rk = results("if_results"), (key, "one step")
    if rk not in res:
        res[rk] = one_step_report(pipe, N_EVAL, pipe.run.seed)
    rep = res[rk]
    names, r = CONDITIONS[pipe.run.target], pipe.run
    teacher = "teacher · exact VP PF-ODE" if r.teacher == "exact_vp" else "teacher · 1-RF"
    bars = {f"{teacher} ({r.teacher_steps} steps)": rep["teacher"],
            "2-RF (1 Euler step)": rep["2-RF"], "2-RF + distill (1 step)":
            rep["student from 2-RF"]}
    bars_column, numbers = st.columns([4, 1])
    with bars_column:
        chart(per_condition_fig(names, bars, "Energy distance to each condition's data",
                                rare=r.rare if r.rare >= 0 else None, floor=rep["floor"],
                                height=350), f"if-percond-{key}")
    t, one, s = (mean(rep[w]) for w in ("teacher", "2-RF", "student from 2-RF"))
    numbers.metric(f"Teacher, {r.teacher_steps} steps", format_distance(t, rep["floor"]))
    numbers.metric("2-RF, 1 step", format_distance(one, rep["floor"]))
    numbers.metric("Student, 1 step", format_distance(s, rep["floor"]))
    numbers.caption(f"Mean over the conditions, {N_EVAL} samples each; sampling noise "
                    f"{rep['floor']:.4f}.")
    answer = CLOSE if s - t <= rep["floor"] else BETWEEN if s < one - rep["floor"] else NO_GAIN
    verdict("if-one-step", answer,
            "Reflow made the paths nearly straight, so one Euler step of the 2-RF already "
            "lands near the data; distillation fits what is left of its map's bend, and the "
            "student does in one call what the teacher did in many.")
    return rep


def coverage_section(pipe, rep: dict) -> None:
    """The coverage problem (§4.4): a condition that is rarely prompted gets few triples."""
    st.header("4 · Coverage: a rare prompt")
    r, names = pipe.run, CONDITIONS[pipe.run.target]
    counts = rep["triples"]
    if r.rare < 0:
        st.markdown(f"Every prompt was asked about equally here (about {min(counts)} to "
                    f"{max(counts)} triples each). What if one prompt is rarely asked, or never? "
                    "Choose a **Rare prompt** in section 2 with its share (0.2 %: a handful of "
                    "triples; 0 %: none) and run the pipeline again (about a minute).")
        return
    s = rep["student from 2-RF"]
    others = mean([v for i, v in enumerate(s) if i != r.rare])
    c1, c2, c3 = st.columns(3)
    c1.metric(f"Triples for {names[r.rare]}", f"{counts[r.rare]} of {sum(counts)}")
    c2.metric(f"Student on {names[r.rare]}", format_distance(s[r.rare], rep["floor"]))
    c3.metric("Student, other prompts", format_distance(others, rep["floor"]))
    st.caption(f"With {FIX_NAMES[r.fix]}. Few triples means the 2-RF and the student see the "
               "prompt rarely in training; no triples means nothing tells them where it goes. "
               "Go deeper › Rare-prompt fixes compares your runs.")


st.title("InstaFlow: reflow, then one step")
st.caption("Article §4-4.4 · Liu et al., InstaFlow: One Step is Enough for High-Quality "
           "Diffusion-Based Text-to-Image Generation (ICLR 2024)")
settings = page_settings()
dev = device(settings)
results("if_results")  # created here: its stored entries are keyed by this page's code
notice("A text-to-image teacher needs 20-50 steps per image. InstaFlow straightens it with "
       "reflow, then distils one step. Here a prompt is the name of a part of the target.",
       "§4.1-4.4")
base, paths_column = teacher_section(settings)
run_id, pipeline = pipeline_section(base, dev)
if base.teacher == "rf":
    trained_teacher(paths_column, pipeline)
report = one_step_section(run_id, pipeline, base.teacher_steps)
if report is not None:
    coverage_section(pipeline, report)
section = deeper("if_deeper", list(deeper_sections.SECTIONS))
if section is not None:
    deeper_sections.SECTIONS[section](run_id, pipeline)
