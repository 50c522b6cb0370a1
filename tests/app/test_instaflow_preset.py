"""The InstaFlow page opens on its preset: finished at once, no training, the pipeline folded
away, one click away from running it again; the prediction reveals the preset's measured
one-step quality."""

import json

import pytest

from tests.app.conftest import run_page, values

pytestmark = pytest.mark.presets


def test_opens_on_the_preset_then_reveals_per_condition_results():
    at = run_page("instaflow")
    pipe = next(s for k, s in at.session_state["runs"].items() if k.startswith("if:"))
    assert pipe.done and pipe.meta["preset"] == "instaflow-8gaussians"
    assert any(e.label.startswith("The pipeline: finished (its preset") for e in at.expander)
    button = next(b for b in at.button if b.key.startswith("train:if:"))
    assert button.label.startswith("Run the pipeline ")  # "... again": a preset, not a start
    assert any("Preset" in c.value and "instaflow-8gaussians" in c.value for c in at.caption)
    assert not [m for m in at.metric if "1 step" in m.label]  # the answer waits

    radio = at.radio(key="choice:if-one-step")
    radio.set_value(radio.options[0])
    next(b for b in at.button if "Reveal" in b.label).click().run()
    assert not at.exception, [e.value for e in at.exception]
    fig = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
               if "each condition" in json.loads(c.proto.spec)["layout"]["title"]["text"])
    student = values(next(t for t in fig["data"] if t["name"] == "2-RF + distill (1 step)")
                     ["customdata"])
    assert len(student) == 8 and student.max() < 0.02
    # the preset's claim: the one-step student is as close as the 25-step teacher
    assert any("Right" in s.value for s in at.success)
    assert any(h.value.startswith("4 · Coverage") for h in at.header)
