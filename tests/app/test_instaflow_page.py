"""The InstaFlow page through streamlit.testing: it opens on the exact teacher's paths without
training, guidance changes them, the question comes before its answer, and the pipeline runs to
per-condition results on a click, with a rare prompt's coverage."""

import json

import numpy as np
from streamlit.testing.v1 import AppTest

from flowviz.data import mixture_means
from flowviz.viz.style import METHOD_COLORS, decade_label
from tests.app.conftest import run_page, values

TINY = {"if_triples": 2000, "if_rfsteps": 300, "if_ssteps": 200}


def open_page() -> AppTest:
    return run_page("instaflow", n_data=400)


def figure(at: AppTest, title: str) -> dict | None:
    for c in at.get("plotly_chart"):
        fig = json.loads(c.proto.spec)
        if title in (fig["layout"].get("title", {}).get("text") or ""):
            return fig
    return None


def teacher_ends(at: AppTest) -> dict:
    """Condition name -> end points of the teacher-paths chart."""
    fig = figure(at, "Teacher paths")
    assert fig is not None, "no teacher chart"
    out, name = {}, None
    for tr in fig["data"]:
        if tr.get("mode") == "lines":
            name = tr["name"]
        elif tr["marker"].get("symbol") == "circle":
            out[name] = np.stack([values(tr["x"]), values(tr["y"])], 1)
    return out


def run_pipeline(at: AppTest) -> AppTest:
    next(b for b in at.button if b.key.startswith("train:if:")).click().run()
    for _ in range(40):
        runs = [s for k, s in at.session_state["runs"].items() if k.startswith("if:")]
        if runs and runs[-1].done and not any(
                at.session_state[k] for k in at.session_state if str(k).startswith("running:")):
            break
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def reveal(at: AppTest, choice: int = 0) -> AppTest:
    radio = at.radio(key="choice:if-one-step")
    radio.set_value(radio.options[choice])
    next(b for b in at.button if "Reveal" in b.label).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_opens_on_the_exact_teacher_and_each_condition_lands_on_its_part():
    at = open_page()
    ends = teacher_ends(at)
    means = mixture_means("8gaussians").numpy()
    assert list(ends) == ["E", "NE", "N", "NW", "W", "SW", "S", "SE"]
    for c, x in enumerate(ends.values()):
        assert (np.linalg.norm(x - means[c], axis=1) < 1.0).mean() > 0.95
    assert next(b for b in at.button if b.key.startswith("train:if:")).label == \
        "Run the pipeline"


def test_guidance_zero_ignores_the_prompt():
    at = open_page()
    at.slider(key="if_w").set_value(0.0).run()
    ends = list(teacher_ends(at).values())
    # w = 0: the unconditional field, so every condition maps the same noise to the same points
    for x in ends[1:]:
        assert np.allclose(x, ends[0], atol=1e-5)


def test_the_answer_is_absent_before_the_prediction_and_present_after():
    at = open_page()
    for k, v in TINY.items():
        at.select_slider(key=k).set_value(v)
    run_pipeline(at.run())
    assert figure(at, "each condition's data") is None
    assert not [m for m in at.metric if "1 step" in m.label]
    assert "if_results" not in at.session_state or not at.session_state["if_results"]
    reveal(at)
    fig = figure(at, "each condition's data")
    assert fig is not None
    bars = {tr["name"]: tr for tr in fig["data"] if tr["type"] == "bar"}
    assert list(bars) == ["teacher · exact VP PF-ODE (25 steps)", "2-RF (1 Euler step)",
                          "2-RF + distill (1 step)"]
    # one colour per method, from the label
    assert bars["2-RF (1 Euler step)"]["marker"]["color"] == METHOD_COLORS["2-RF"]
    assert bars["2-RF + distill (1 step)"]["marker"]["color"] == METHOD_COLORS["distilled"]
    # the verdict names what the page measured, and the metrics show the same means
    rep = next(v for k, v in at.session_state["if_results"].items() if k[1] == "one step")
    t, one, s = (sum(rep[w]) / len(rep[w]) for w in ("teacher", "2-RF", "student from 2-RF"))
    floor = rep["floor"]
    expected = "as close as the many-step teacher" if s - t <= floor else \
        "closer than one 2-RF step, not as close as the teacher" if s < one - floor else \
        "no closer than one Euler step of the 2-RF"
    boxes = [*at.success, *at.error]
    assert len(boxes) == 1 and f"**{expected}**" in boxes[0].value
    shown = {m.label: m.value for m in at.metric}
    assert shown["Student, 1 step"] in (f"{s:.4f}", f"≤ noise ({s:.4f})")
    assert shown["Teacher, 25 steps"] in (f"{t:.4f}", f"≤ noise ({t:.4f})")

    # latency, in Go deeper, reuses these measurements; its log axes read in decades
    at.segmented_control(key="if_deeper").set_value("Latency vs quality").run()
    assert not at.exception, [e.value for e in at.exception]
    lat = figure(at, "Wall time vs quality")
    for axis in ("xaxis", "yaxis"):
        ticks = lat["layout"][axis]
        assert ticks["type"] == "log"
        assert ticks["ticktext"] == [decade_label(v) for v in ticks["tickvals"]]
    names = [tr["name"] for tr in lat["data"]]
    assert names[0] == "teacher (exact VP PF-ODE) · 25 steps"
    assert lat["data"][0]["marker"]["color"] == METHOD_COLORS["diffusion"]
    assert lat["data"][-1]["marker"]["color"] == METHOD_COLORS["distilled"]


def test_pipeline_runs_to_per_condition_results_with_a_rare_condition():
    at = open_page()
    for k, v in TINY.items():
        at.select_slider(key=k).set_value(v)
    at.selectbox(key="if_rare").set_value("N").run()
    at.select_slider(key="if_share").set_value(0.01).run()
    reveal(run_pipeline(at))
    rep = next(v for k, v in at.session_state["if_results"].items() if k[1] == "one step")
    assert sum(rep["triples"]) == 2000 and rep["triples"][2] < 60
    assert all(v < 0.2 for v in rep["student from 2-RF"])
    fig = figure(at, "each condition's data")
    assert "(rare)" in values_x(fig)[2]
    labels = [m.label for m in at.metric]
    assert "Triples for N" in labels and "Student on N" in labels
    triples = next(m for m in at.metric if m.label == "Triples for N").value
    assert triples == f"{rep['triples'][2]} of 2000"


def values_x(fig: dict) -> list[str]:
    return list(next(tr for tr in fig["data"] if tr["type"] == "bar")["x"])


def test_deeper_sections_compute_only_when_chosen():
    at = open_page()
    assert not [h for h in at.subheader if "straight from the teacher" in h.value]
    at.segmented_control(key="if_deeper").set_value("Student from the teacher").run()
    assert not at.exception
    assert any("straight from the teacher" in h.value for h in at.subheader)
    assert any("Run the pipeline above first" in i.value for i in at.info)
