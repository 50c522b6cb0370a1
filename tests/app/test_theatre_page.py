"""Flow theatre page (AppTest): the question first, then the animated theatre of the presets
whose frames are the samplers' states, the followed particle, and a clear message without
presets."""

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from flowviz import theatre as th
from tests.app.conftest import ROOT, charts, values

REVEAL = "Reveal the answer"


def _open(**state) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    for k, v in state.items():
        at.session_state[k] = v
    at.switch_page("views/theatre.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _reveal(at, choice="1-RF") -> None:
    next(r for r in at.radio if r.label == "Your prediction").set_value(choice)
    next(b for b in at.button if b.label == REVEAL).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_without_presets_the_page_says_why(monkeypatch):
    monkeypatch.setenv("FLOWVIZ_PRESETS", "0")
    at = _open()
    assert any("plays the classroom presets" in i.value for i in at.info)
    assert not charts(at)


@pytest.mark.presets
def test_question_first_then_the_theatre_plays_the_samplers_states():
    at = _open()
    assert not charts(at), "the theatre answers the question: hidden until a prediction"
    _reveal(at, "2-RF")
    specs = [json.loads(s) for s in charts(at)]
    assert len(specs) == 2  # the theatre and the followed particle
    theatre = specs[0]
    moving = [t for t in theatre["data"] if t.get("name") != "data"]
    assert [t["name"] for t in moving] == [th.METHODS[k] for k in th.DEFAULT]
    assert theatre["layout"]["updatemenus"][0]["buttons"][0]["label"] == "▶ Play"
    frames = theatre["frames"]
    assert len(frames) == len(theatre["layout"]["sliders"][0]["steps"]) >= 30
    # at the default NFE 1, the last frame of each method is its sampler's one-step output
    flights = th.from_presets(th.DEFAULT, 1, 400, 0)
    for trace, key in zip(frames[-1]["data"], th.DEFAULT, strict=True):
        end = np.stack([values(trace["x"]), values(trace["y"])], 1)
        assert np.allclose(end, flights[key].xs[-1].numpy(), atol=1e-4), key
    # the verdict measured the 1-RF as farthest (its one step lands near the data mean)
    assert at.error and "**1-RF**" in at.error[0].value
    assert any(t.get("mode") == "lines+markers" for t in specs[1]["data"])  # particle paths


@pytest.mark.presets
def test_budget_and_layout_controls_rebuild_the_theatre():
    at = _open(**{"predict:theatre": "1-RF"})
    at.select_slider(key="th_k").set_value(4)
    at.segmented_control(key="th_layout").set_value("Overlaid")
    at.multiselect(key="th_methods").set_value(["exact v*", "1-RF", "MeanFlow"])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    theatre = json.loads(charts(at)[0])
    assert "xaxis2" not in theatre["layout"]  # one panel
    names = [t["name"] for t in theatre["data"] if t.get("name") != "data"]
    assert names == ["exact v*", "1-RF", "MeanFlow"]
    ts = [float(s["label"]) for s in theatre["layout"]["sliders"][0]["steps"]]
    assert all(any(abs(t - q) < 1e-6 for t in ts) for q in (0.25, 0.5, 0.75, 1.0))
    table = at.dataframe[0].value
    assert list(table["method"]) == names
    rf = th.from_presets(("rf1",), 4, 400, 0)["rf1"].xs[:, 0].double()
    assert np.isclose(table["path length"][1], float((rf[1:] - rf[:-1]).norm(dim=1).sum()),
                      atol=1e-4)
    at.multiselect(key="th_methods").set_value([])
    at.run()
    assert any("at least one method" in i.value for i in at.info)
