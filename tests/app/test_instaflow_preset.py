"""The InstaFlow page opens on its preset: results at once, no training, and one click away
from running the same pipeline live."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "views" / "instaflow.py")


@pytest.fixture(autouse=True)
def no_presets():
    """Presets stay on here (overrides tests/app/conftest.py)."""


def test_opens_on_the_preset_with_per_condition_results():
    at = AppTest.from_file(PAGE, default_timeout=240)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    pipe = next(s for k, s in at.session_state["runs"].items() if k.startswith("if:"))
    assert pipe.done and pipe.meta["preset"] == "instaflow-8gaussians"
    assert any(h.value.startswith("3 · One step") for h in at.header)
    table = at.dataframe[0].value
    assert len(table) == 8 and (table["student from 2-RF"] < 0.02).all()
    button = next(b for b in at.button if b.key.startswith("train:if:"))
    assert button.label == "Run the pipeline live"
    assert any("Preset" in c.value and "instaflow-8gaussians" in c.value for c in at.caption)
