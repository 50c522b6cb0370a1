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
    assert not at.get("plotly_chart")  # nothing to draw before a model exists
    assert not any(r.label == "Your prediction" for r in at.radio)  # no question yet


def test_inconsistent_and_invalid_templates_are_explained():
    at = open_page()
    at.selectbox(key="sc_rule").set_value("first_only").run()
    assert any("Inconsistent" in w.value and "fixed point" in w.value for w in at.warning)
    assert not [i for i in at.info if "no target trains" in i.value]  # halves: all on the grid
    at.selectbox(key="sc_rule").set_value("two_thirds").run()
    off = next(i.value for i in at.info if "no target trains" in i.value)
    assert "s(·, ·, 0.667) for D = 1/1" in off and "Any M ≤ 128" in off
    at.selectbox(key="sc_grid").set_value("steps").run()
    off = next(i.value for i in at.info if "no target trains" in i.value)
    assert "0.667" in off and "Any M ≤ 128" not in off
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
    for _ in range(80):
        if state.done:
            break
        at.run()
    assert state.done and not at.exception
    at.run()
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    family = next(s for s in specs if title(s).startswith("Paths of"))
    assert [t["name"] for t in family["data"][:8]] == [f"M = {m}" for m in
                                                         (1, 2, 4, 8, 16, 32, 64, 128)]
    # M = 1 has 2 nodes per path, M = 128 has 129 (plus the None separators)
    assert len(arr(family["data"][0]["x"])) == 30 * 3
    assert len(arr(family["data"][7]["x"])) == 30 * 130
    # Go deeper: the identity at a point; the page's gap is the distance between the drawn ends
    at.segmented_control(key="sc_deeper").set_value("2d vs two steps of d").run()
    assert not at.exception, [e.value for e in at.exception]
    gap = next(m for m in at.metric if m.label.startswith("Gap"))
    assert float(gap.value) >= 0
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    cons = next(s for s in specs if title(s).startswith("From ("))
    ends = next(t for t in cons["data"] if t.get("name") == "ends")
    (x1, x2), (y1, y2) = arr(ends["x"]), arr(ends["y"])
    assert abs(((x1 - x2) ** 2 + (y1 - y2) ** 2) ** 0.5 - float(gap.value)) < 1e-3
    # the plain FM comparison, after a prediction: same network, steps scaled by the cost ratio
    at.radio(key="choice:sc-fm").set_value("4 to 8")
    next(b for b in at.button if b.label == "Reveal the answer").click().run()
    button(at, "train:scfm:").click().run()
    fm = at.session_state["runs"][next(k for k in at.session_state["runs"] if "scfm" in k)]
    for _ in range(80):  # each rerun trains about one tick's worth of steps
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
    # plain FM with one Euler step is far worse than the shortcut's one jump
    one = {m.label: float(m.value) for m in at.metric if m.label.endswith(("jump", "step"))}
    assert one["Plain FM, one step"] > 5 * one["Shortcut, one jump"]
    quality = next(s for s in map(json.loads, (c.proto.spec for c in at.get("plotly_chart")))
                   if title(s).startswith("Energy distance to the data"))
    names = [t["name"] for t in quality["data"]]
    assert "Shortcut, M steps" in names and "plain FM, Euler (same time)" in names


@pytest.mark.presets
def test_the_answer_is_drawn_only_after_the_prediction():
    """The plain-FM run, its curve and the verdict appear only once a prediction is committed;
    the verdict's answer agrees with the curves it is read from."""
    at = open_page()
    keys = list(at.session_state["runs"])
    assert any(k.startswith("sc:") for k in keys) and not any("scfm" in k for k in keys)
    titles = [title(json.loads(c.proto.spec)) for c in at.get("plotly_chart")]
    assert not any(t.startswith("Energy distance to the data") for t in titles)
    told = [m.value for m in (*at.success, *at.error) if "Plain flow matching" in m.value]
    assert not [m for m in at.metric if "FM" in m.label] and not told
    at.radio(key="choice:sc-fm").set_value("1 or 2: the jump buys nothing")
    next(b for b in at.button if b.label == "Reveal the answer").click().run()
    assert not at.exception, [e.value for e in at.exception]
    quality = next(s for s in map(json.loads, (c.proto.spec for c in at.get("plotly_chart")))
                   if title(s).startswith("Energy distance to the data"))
    curve = {t["name"]: (arr(t["x"]), [float(v.split("(")[-1].rstrip(")")) for v in t["text"]])
             for t in quality["data"] if t.get("text")}
    sc_x, sc_y = curve["Shortcut, M steps"]
    fm_x, fm_y = curve["plain FM, Euler (same time)"]
    floor = float(re.search(r"sampling noise \(([\d.]+)\)",
                            " ".join(c.value for c in at.caption)).group(1))
    target = max(sc_y[0], floor)
    calls = next((int(n) for n, e in zip(fm_x, fm_y, strict=True) if e <= target), None)
    shown = next(m.value for m in at.metric if m.label == "FM calls to match")
    assert shown == (str(calls) if calls else "> 128")
    expected = ("16 or more, or never within 128" if calls is None or calls >= 16
                else "1 or 2: the jump buys nothing" if calls <= 2 else "4 to 8")
    told = next(m.value for m in (*at.success, *at.error) if "Plain flow matching" in m.value)
    assert f"**{expected}**" in told
