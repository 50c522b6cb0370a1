"""The InstaFlow page through streamlit.testing: it opens on the exact teacher's paths without
training, guidance changes them, and its pipeline runs to per-condition results on a click."""

import json

import numpy as np
from streamlit.testing.v1 import AppTest

from flowviz.data import mixture_means
from tests.app.conftest import run_page, values

TINY = {"if_triples": 2000, "if_rfsteps": 300, "if_ssteps": 200}


def open_page() -> AppTest:
    return run_page("instaflow", n_data=400)


def teacher_ends(at: AppTest) -> dict:
    """Condition name -> end points of the teacher-paths chart."""
    for c in at.get("plotly_chart"):
        fig = json.loads(c.proto.spec)
        if "Teacher paths" in fig["layout"]["title"]["text"]:
            out, name = {}, None
            for tr in fig["data"]:
                if tr.get("mode") == "lines":
                    name = tr["name"]
                elif tr["marker"].get("symbol") == "circle":
                    out[name] = np.stack([values(tr["x"]), values(tr["y"])], 1)
            return out
    raise AssertionError("no teacher chart")


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


def test_pipeline_runs_to_per_condition_results_with_a_rare_condition():
    at = open_page()
    for k, v in TINY.items():
        at.select_slider(key=k).set_value(v)
    at.selectbox(key="if_rare").set_value("N").run()
    at.select_slider(key="if_share").set_value(0.01).run()
    next(b for b in at.button if b.key.startswith("train:if:")).click().run()
    for _ in range(30):
        if any(h.value.startswith("3 · One step") for h in at.header):
            break
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert list(table["condition"])[:3] == ["E", "NE", "N"]
    assert table["triples"].sum() == 2000 and table["triples"][2] < 60
    assert (table["student from 2-RF"] < 0.2).all()
    assert any("Coverage:" in m.value for m in at.markdown)
    labels = [m.label for m in at.metric]
    assert "Student from 2-RF: mean ED" in labels
