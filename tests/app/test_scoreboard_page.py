"""The scoreboard page through streamlit.testing: at the default settings it opens on the
presets' curves with their compute, and one click trains the missing distilled student."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import run_page, values

pytestmark = pytest.mark.presets


def curves(at: AppTest) -> dict:
    for c in at.get("plotly_chart"):
        fig = json.loads(c.proto.spec)
        if "vs NFE" in fig["layout"]["title"]["text"]:
            return {tr["name"]: (values(tr["x"]), values(tr["y"])) for tr in fig["data"]}
    return {}


def test_opens_on_presets_then_trains_the_student():
    at = run_page("scoreboard")
    c = curves(at)
    assert set(c) == {"1-RF", "minibatch OT", "2-RF", "Shortcut", "MeanFlow"}
    # the article's claim, measured: one Euler step of the 1-RF is far worse than the 2-RF's
    assert c["1-RF"][1][0] > 10 * c["2-RF"][1][0]
    assert c["1-RF"][1][-1] < 0.02  # ... and fine at NFE 128
    table = at.dataframe[0].value
    assert set(table["from"]) == {"preset"}
    rf2 = table[table["method"] == "2-RF"].iloc[0]
    assert rf2["teacher s"] > 0 and rf2["pair generation s"] > 0

    next(b for b in at.button if b.key.startswith("train:sb:")).click().run()
    for _ in range(40):
        if "2-RF + distill" in curves(at):
            break
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    c = curves(at)
    assert list(c["2-RF + distill"][0]) == [1]
    assert c["2-RF + distill"][1][0] < 0.05
    table = at.dataframe[0].value
    st = table[table["method"] == "2-RF + distill"].iloc[0]
    assert st["from"] == "this session" and st["total s"] > st["own training s"] > 0
