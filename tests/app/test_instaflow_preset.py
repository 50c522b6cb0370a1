"""The InstaFlow page opens on its preset: results at once, no training, and one click away
from running the same pipeline live."""

import pytest

from tests.app.conftest import run_page

pytestmark = pytest.mark.presets


def test_opens_on_the_preset_with_per_condition_results():
    at = run_page("instaflow")
    pipe = next(s for k, s in at.session_state["runs"].items() if k.startswith("if:"))
    assert pipe.done and pipe.meta["preset"] == "instaflow-8gaussians"
    assert any(h.value.startswith("3 · One step") for h in at.header)
    table = at.dataframe[0].value
    assert len(table) == 8 and (table["student from 2-RF"] < 0.02).all()
    button = next(b for b in at.button if b.key.startswith("train:if:"))
    assert button.label == "Run the pipeline live"
    assert any("Preset" in c.value and "instaflow-8gaussians" in c.value for c in at.caption)
