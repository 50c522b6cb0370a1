"""AppTest helpers: run the real app (app.py) and switch to a page, as a user would."""

import base64

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


def open_page(page: str | None = None, timeout: float = 180) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.run()
    if page:
        at.switch_page(f"views/{page}.py")
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def run_page(name: str, timeout: float = 240, **state) -> AppTest:
    """One page file run on its own (no router), with ``state`` preset in session_state."""
    at = AppTest.from_file(str(ROOT / "views" / f"{name}.py"), default_timeout=timeout)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def reveal(at: AppTest) -> AppTest:
    """Commit any prediction on the page: the answer, and what follows it, is drawn."""
    for question in [r for r in at.radio if r.label == "Your prediction"][:1]:
        question.set_value(question.options[0])
        next(b for b in at.button if b.label == "Reveal the answer").click()
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def values(v) -> np.ndarray:
    """A plotly trace's data array, whether plain JSON or plotly's typed-array encoding."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v, dtype=float)


def charts(at: AppTest) -> list[str]:
    """The plotly figure specs (JSON strings) on the page, in order."""
    return [c.proto.spec for c in at.get("plotly_chart")]


@pytest.fixture
def page():
    return open_page


@pytest.fixture(autouse=True)
def no_presets(request, monkeypatch):
    """Pages start untrained (FLOWVIZ_PRESETS=0) except in test_presets_pages.py and tests
    marked ``presets``: the live training tests press Train live at the default settings."""
    if not request.module.__name__.endswith("test_presets_pages") and \
            request.node.get_closest_marker("presets") is None:
        monkeypatch.setenv("FLOWVIZ_PRESETS", "0")


@pytest.fixture(autouse=True)
def fresh_training_slots(monkeypatch):
    """Each test gets the server-wide training queue empty: a test that ends mid-training
    would otherwise hold a slot for the next ones (until its ttl)."""
    from flowviz.serve import TrainingSlots
    from views import training

    monkeypatch.setattr(training, "SLOTS", TrainingSlots(training.SLOTS.limit))
