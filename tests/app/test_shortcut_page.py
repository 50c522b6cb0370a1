"""The shortcut page (views/shortcut.py) through streamlit.testing (no browser)."""

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "views" / "shortcut.py")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from a second thread, and lose a lot on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def open_page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def arr(v) -> np.ndarray:
    """A plotly data array from a figure spec (plain list or base64 typed array)."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v, dtype=float)


def title(spec: dict) -> str:
    return spec["layout"].get("title", {}).get("text", "")


def button(at, prefix):
    return next(b for b in at.button if b.key.startswith(prefix))


def test_first_render_waits_for_the_button_and_says_so():
    at = open_page()
    assert "runs" not in at.session_state or not at.session_state["runs"]
    assert any("Train live" in i.value for i in at.info)
    assert button(at, "train:sc:").label == "Train live"
    # the exact-field teaser: one Euler step of v* collapses onto the data mean (the article:
    # ED about 1.2 on moons); 32 steps are close to the data
    titles = [title(json.loads(c.proto.spec)) for c in at.get("plotly_chart")]
    ed = {int(m[1]): float(m[2]) for t in titles
          if (m := re.match(r"Exact v\*, (\d+) Euler steps? · ED (-?[\d.]+)", t))}
    assert ed[1] > 0.8 and abs(ed[32]) < 0.05 and ed[4] < 0.3 * ed[1]


def test_inconsistent_and_invalid_templates_are_explained():
    at = open_page()
    at.selectbox(key="sc_rule").set_value("first_only").run()
    assert any("Inconsistent" in w.value and "fixed point" in w.value for w in at.warning)
    assert not [i for i in at.info if "no target trains" in i.value]  # halves: all on the grid
    at.selectbox(key="sc_rule").set_value("two_thirds").run()
    off = next(i.value for i in at.info if "no target trains" in i.value)
    assert "s(·, ·, 0.667) for D = 1/1" in off and "Any step count" in off
    at.selectbox(key="sc_grid").set_value("steps").run()
    off = next(i.value for i in at.info if "no target trains" in i.value)
    assert "0.667" in off and "Any step count" not in off
    at.selectbox(key="sc_rule").set_value("thirds").run()
    assert not [i for i in at.info if "no target trains" in i.value]
    at.selectbox(key="sc_rule").set_value("custom").run()
    at.text_input(key="sc_seg").set_value("0.6, 0.6").run()
    assert not at.exception
    assert any("sum to 1.2" in e.value for e in at.error)
    assert not [b for b in at.button if b.key.startswith("train:sc:")]  # nothing to train
    at.text_input(key="sc_seg").set_value("0.25, 0.75")
    at.text_input(key="sc_w").set_value("0.25, 0.75").run()
    assert any("Consistent" in s.value for s in at.success)


def test_tiny_training_run_advances_and_fills_the_page():
    at = open_page()
    at.select_slider(key="sc_steps").set_value(500)
    at.select_slider(key="sc_hidden").set_value(64).run()
    button(at, "train:sc:").click().run()
    assert not at.exception, [e.value for e in at.exception]
    state = next(iter(at.session_state["runs"].values()))
    first = state.step
    assert first > 0
    at.run()
    assert state.step > first  # each rerun trains another chunk while running
    hist = state.history[-1]
    assert {"loss", "L_FM", "L_SC"} <= set(hist)
    # the logged total is the batch-weighted mean of the parts (share 1/4 on self-consistency)
    assert abs(hist["loss"] - (0.75 * hist["L_FM"] + 0.25 * hist["L_SC"])) < 1e-4 * hist["loss"]
    for _ in range(10):
        if state.done:
            break
        at.run()
    assert state.done and not at.exception
    at.run()
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    family = next(s for s in specs if title(s).startswith("Paths for M"))
    assert [t["name"] for t in family["data"][:8]] == [f"M = {m}" for m in
                                                         (1, 2, 4, 8, 16, 32, 64, 128)]
    # M = 1 has 2 nodes per path, M = 128 has 129 (plus the None separators)
    assert len(arr(family["data"][0]["x"])) == 30 * 3
    assert len(arr(family["data"][7]["x"])) == 30 * 130
    assert len(specs) >= 10
    gap = next(m for m in at.metric if m.label.startswith("Gap"))
    assert float(gap.value) >= 0
    # the page's gap is the distance between the two drawn ends
    cons = next(s for s in specs if title(s).startswith("From ("))
    ends = next(t for t in cons["data"] if t.get("name") == "ends")
    (x1, x2), (y1, y2) = arr(ends["x"]), arr(ends["y"])
    assert abs(((x1 - x2) ** 2 + (y1 - y2) ** 2) ** 0.5 - float(gap.value)) < 1e-3
    # the plain FM comparison: same network, steps scaled by the measured cost ratio
    button(at, "train:scfm:").click().run()
    fm = at.session_state["runs"][next(k for k in at.session_state["runs"] if "scfm" in k)]
    for _ in range(15):
        if fm.done:
            break
        at.run()
    assert fm.done and not at.exception
    at.run()
    ms_sc, ms_fm = fm.meta["cost"]
    assert fm.cfg.steps == max(1, round(500 * ms_sc / ms_fm))
    assert fm.model.cfg.n_scalars == 1 and fm.model.cfg.hidden == 64
    cost = next(c.value for c in at.caption if c.value.startswith("Measured cost per step"))
    assert f"FM gets {fm.cfg.steps} steps for the shortcut run's 500" in cost
    table = at.dataframe[-1].value  # the quality table, last on the page
    assert list(table["model"])[-1] == "plain FM, Euler" and len(table) == 2
    # plain FM with one Euler step is far worse than the shortcut's one jump
    assert table["ED @1"].iloc[1] > 5 * table["ED @1"].iloc[0]
