"""The InstaFlow page's "Go deeper" sections, each computed only when chosen: the paper's
control (a student distilled straight from the teacher), latency vs quality, and the fixes for
a rarely prompted condition compared over this session's runs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from flowviz.device import describe
from flowviz.methods.instaflow import CONDITIONS, latency_report, students_report
from flowviz.viz.instaflow import latency_fig, per_condition_fig
from flowviz.viz.style import format_distance
from views.charts import chart
from views.results import results

N_EVAL = 1000
FIX_TEXT = {"none": "no fix: the rare prompt keeps its few triples",
            "reweight": "reweight: batches drawn with weight 1 / frequency, so the rare "
                        "prompt's few triples are repeated as often as the others",
            "resample": "resample: the prompts are drawn uniformly when the triples are made, "
                        "so the rare prompt gets its full share of new teacher solves"}


def _finished(pipe) -> bool:
    if pipe is None or not pipe.done or pipe.status == "nan":
        st.info("Run the pipeline above first (at the default settings its preset opens "
                "finished).")
        return False
    return True


def _report(key: str, pipe, name: str, compute):
    """An evaluation of this run, once per run (a preset's once per server, on disk)."""
    res, rk = results("if_results"), (key, name)
    if rk not in res:
        res[rk] = compute()
    return res[rk]


def one_step(key: str, pipe) -> dict | None:
    """The lesson's report (section 3), if it was measured (the question answered)."""
    return results("if_results").get((key, "one step"))


def from_teacher(key: str, pipe) -> None:
    """The paper's control: distil the teacher directly, with the same budget."""
    st.subheader("A student distilled straight from the teacher")
    if not _finished(pipe):
        return
    rep = _report(key, pipe, "students", lambda: students_report(pipe, N_EVAL, pipe.run.seed))
    lesson = one_step(key, pipe)
    floor = lesson["floor"] if lesson else None
    names = CONDITIONS[pipe.run.target]
    chart(per_condition_fig(names, {"2-RF + distill (1 step)": rep["data"]["student from 2-RF"],
                                    "teacher + distill (1 step)":
                                        rep["data"]["student from teacher"]},
                            "One-step students: energy distance to each condition's data",
                            floor=floor, height=360), f"if-students-{key}")
    cr = rep["coupling"]
    st.dataframe(pd.DataFrame([{
        "distilled from": {"triples": "teacher's triples", "2-RF endpoints": "2-RF endpoints"}[k],
        "straightness (0: straight)": f"{v['straightness']:.4f}",
        "E‖x1 − x0‖²": f"{v['transport_cost']:.3f}",
        "crossing lines": f"{v['crossing_fraction']:.3f}",
        "NFE per pair": f"{v['nfe_per_pair']:.0f}",
        "‖x1 − x1 teacher‖": f"{v['map_change']:.3f}",
        "student's final loss": f"{v['student_loss']:.1e}"} for k, v in cr.items()]),
        hide_index=True)
    change = cr["2-RF endpoints"]["map_change"]
    st.caption("The paper finds that distilling Stable Diffusion directly fails and distilling "
               "the 2-RF works: reflow makes the noise-to-image map easier for one step to fit. "
               "A student sees only the map x0 → x1, not the paths: here the 2-RF's endpoints "
               f"lie {change:.3f} on average from the teacher's for the same noise, so both "
               "students fit nearly the same map. On images the teacher's map is far less "
               "regular than one simple part per condition.")


def latency(key: str, pipe) -> None:
    """What one step buys: wall time per sample against quality."""
    st.subheader("Latency vs quality")
    lesson = one_step(key, pipe) if pipe is not None else None
    if not _finished(pipe):
        return
    if lesson is None:
        st.info("Answer the question in section 3 first: this section reuses its measurements.")
        return
    rows = _report(key, pipe, "latency", lambda: latency_report(pipe, lesson, N_EVAL,
                                                                pipe.run.seed))
    chart(latency_fig(rows, "Wall time vs quality", height=380), f"if-lat-{key}")
    st.dataframe(pd.DataFrame([{"sampler": a, "ms / 10k samples": f"{b:.0f}",
                                "mean ED": format_distance(c, lesson["floor"])}
                               for a, b, c in rows]), hide_index=True)
    st.caption(f"Best of 3 on {describe(pipe.device)}, prompts mixed. The teacher's cost "
               "grows with its steps; the student is one call whatever the target.")


def fixes(key: str, pipe) -> None:
    """Reweight or resample for a rare prompt, compared over this session's finished runs."""
    st.subheader("Fixes for a rare prompt (§4.4)")
    st.markdown("\n".join(f"- {t}" for t in FIX_TEXT.values()))
    evaluated = results("if_results")
    rows = []
    for k, s in st.session_state.get("runs", {}).items():
        rep = evaluated.get((k, "one step")) if k.startswith("if:") else None
        if rep is None:
            continue
        r, student = s.run, rep["student from 2-RF"]
        names = CONDITIONS[r.target]
        rows.append({"run": s.meta["label"], "target": r.target,
                     "rare prompt": f"{names[r.rare]} ({rep['triples'][r.rare]} triples)"
                     if r.rare >= 0 else "— (balanced)",
                     "student on it": format_distance(student[r.rare], rep["floor"])
                     if r.rare >= 0 else "—",
                     "student, mean": format_distance(sum(student) / len(student),
                                                      rep["floor"]),
                     "pipeline s": f"{s.seconds:.0f}"})
    if not rows:
        st.info("No run measured yet: answer section 3's question for each run you train.")
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption("One row per pipeline of this session whose section 3 was measured. Try the "
               "same rare prompt with each fix.")


SECTIONS = {"Student from the teacher": from_teacher, "Latency vs quality": latency,
            "Rare-prompt fixes": fixes}
