"""Flow theatre page (AppTest): the question first, then the animated theatre of the presets
whose frames are the samplers' states, the followed particle, and a clear message without
presets."""

import base64
import json
import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from flowviz import theatre as th
from tests.app.conftest import ROOT, charts

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
    assert not charts(at) and not at.get("iframe")


def player(at) -> dict:
    """The spec the theatre's player carries (its iframe's HTML)."""
    html = next(e.proto.srcdoc for e in at.get("iframe") if "window.theatre" in e.proto.srcdoc)
    return json.loads(re.search(r"const S = (\{.*?\});\n", html).group(1))


def states(m: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(m["xs"]), "<f4").reshape(len(m["ts"]), m["n"], 2)


@pytest.mark.presets
def test_question_first_then_the_theatre_plays_the_samplers_states():
    at = _open()
    assert not at.get("iframe"), "the theatre answers the question: hidden until a prediction"
    _reveal(at, "2-RF")
    spec = player(at)
    assert [m["label"] for m in spec["methods"]] == [th.METHODS[k] for k in th.DEFAULT]
    # at the default NFE 1 every method carries exactly its sampler's states, same noise
    flights = th.from_presets(th.DEFAULT, 1, 400, 0)
    for m, key in zip(spec["methods"], th.DEFAULT, strict=True):
        want = flights[key]
        assert m["ts"] == pytest.approx(want.ts.tolist(), abs=1e-6)
        assert np.allclose(states(m), want.xs.numpy(), atol=1e-6), key
        assert np.allclose(states(m)[0], th.noise(400, 0).numpy())  # the same noise
    assert len(states(spec["methods"][1])) == 2  # the 1-RF: one Euler step, two states
    # the slider stops at every visited state
    assert all(any(abs(t - s) < 1e-6 for t in spec["times"]) for m in spec["methods"]
               for s in m["ts"])
    # the verdict measured the 1-RF as farthest (its one step lands near the data mean)
    assert at.error and "**1-RF**" in at.error[0].value
    specs = [json.loads(s) for s in charts(at)]
    assert len(specs) == 1  # the followed particle
    assert any(t.get("mode") == "lines+markers" for t in specs[0]["data"])


@pytest.mark.presets
def test_budget_and_layout_controls_rebuild_the_theatre():
    at = _open(**{"predict:theatre": "1-RF"})
    at.select_slider(key="th_k").set_value(4)
    at.segmented_control(key="th_layout").set_value("Overlaid")
    at.multiselect(key="th_methods").set_value(["exact v*", "1-RF", "MeanFlow"])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    spec = player(at)
    names = [m["label"] for m in spec["methods"]]
    assert spec["overlay"] and names == ["exact v*", "1-RF", "MeanFlow"]
    assert [len(m["ts"]) for m in spec["methods"]] == [61, 5, 2]  # RK4 60, 4 Euler, 1 jump
    table = at.dataframe[0].value
    assert list(table["method"]) == names
    rf = th.from_presets(("rf1",), 4, 400, 0)["rf1"].xs[:, 0].double()
    assert np.isclose(table["path length"][1], float((rf[1:] - rf[:-1]).norm(dim=1).sum()),
                      atol=1e-4)
    at.multiselect(key="th_methods").set_value([])
    at.run()
    assert any("at least one method" in i.value for i in at.info)
