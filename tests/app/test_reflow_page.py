"""The ReFlow page through streamlit.testing (no browser): it opens without training, asks its
question before it answers it, its phases train a tiny pipeline when their buttons are pressed,
a phase built on a retrained one is stale, and the "Go deeper" sections do what they say."""

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from flowviz import data
from flowviz.metrics import segments_cross
from flowviz.viz.style import METHOD_COLORS

PAGE = str(Path(__file__).resolve().parents[2] / "views" / "reflow.py")
TINY = {"rf_steps1": 100, "rf_hidden": 64, "rf_batch1": 128, "rf_pairs": 1000, "rf_steps2": 100}
QUESTION = "rf-one-step"


def open_page(n_data: int = 1000) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=240)
    at.session_state["n_data"] = n_data
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def tiny_page() -> AppTest:
    at = open_page(n_data=200)
    for k, v in TINY.items():
        at.select_slider(key=k).set_value(v)
    at.selectbox(key="rf_solver").set_value("rk4").run()
    at.select_slider(key="rf_solver_steps").set_value(4).run()
    return at


def spec(at: AppTest, title: str) -> dict:
    """The plotly figure whose title contains ``title``."""
    for c in at.get("plotly_chart"):
        fig = json.loads(c.proto.spec)
        if title in fig["layout"].get("title", {}).get("text", ""):
            return fig
    raise AssertionError(f"no chart titled {title!r}")


def titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "")
            for c in at.get("plotly_chart")]


def arr(v) -> torch.Tensor:
    """A plotly JSON array: a list, or a typed array {"dtype", "bdata" (base64)}."""
    if isinstance(v, dict):
        return torch.from_numpy(np.frombuffer(base64.b64decode(v["bdata"]), v["dtype"]).copy())
    return torch.tensor(v)


def button(at: AppTest, prefix: str):
    return next(b for b in at.button if b.key.startswith(prefix))


def state(at: AppTest, prefix: str):
    return next(s for k, s in at.session_state["runs"].items() if k.startswith(prefix))


def metric(at: AppTest, label: str) -> list[str]:
    return [m.value for m in at.metric if m.label == label]


def straightness(at: AppTest) -> list[float]:
    """The straightness S under each round's paths."""
    return [float(m.value.split("**")[1]) for m in at.markdown
            if m.value.startswith("Straightness **")]


def status(at: AppTest, title: str) -> str:
    return next(m.value for m in at.markdown if m.value.startswith(f"**{title}** · "))


def press_until_done(at: AppTest, prefix: str, reruns: int = 60):
    """Press a phase's start button, then rerun (one tick each) until its state is done."""
    button(at, f"train:{prefix}").click().run()
    for _ in range(reruns):
        s = state(at, prefix)
        if s.done:
            break
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return state(at, prefix)


def predict(at: AppTest, choice: str) -> None:
    at.radio(key=f"choice:{QUESTION}").set_value(choice)
    next(b for b in at.button if b.label == "Reveal the answer").click().run()
    assert not at.exception, [e.value for e in at.exception]


def verdicts(at: AppTest) -> list[str]:
    return [e.value for e in [*at.success, *at.error] if "energy distance" in e.value]


def test_opens_without_training_and_says_what_to_press():
    at = open_page()
    assert any("Nothing is trained yet" in i.value for i in at.info)
    assert button(at, "train:rf1:").label == "Train 1-RF" and not button(at, "train:rf1:").disabled
    assert not at.session_state["runs"]  # nothing trained on page load
    assert "not started" in status(at, "Train the 1-RF")
    assert "waiting for the 1-RF" in status(at, "Solve the 1-RF ODE for pairs")
    assert "waiting for its pairs" in status(at, "Train the 2-RF on them")
    assert not at.get("plotly_chart")  # no training, no answer yet
    # committing a prediction with nothing trained says what is missing instead of answering
    predict(at, "About as close")
    assert any("Train the 1-RF, its pairs and the 2-RF" in c.value for c in at.caption)
    assert not verdicts(at)


def test_tiny_pipeline_answers_its_question_only_after_the_prediction():
    at = tiny_page()
    assert not at.session_state["runs"]
    s1 = press_until_done(at, "rf1:")
    assert s1.step == 100 and "done" in status(at, "Train the 1-RF")
    assert not button(at, "train:rfp:").disabled

    # the pairs: one chunk of 1000 rows per tick (+ the 200 data points inverted); pausable
    button(at, "train:rfp:").click().run()
    pairs = state(at, "rfp:")
    assert pairs.n_done == 1000 and not pairs.done
    button(at, "pause:rfp:").click().run()
    at.run()
    assert pairs.n_done == 1000  # paused: no progress on reruns
    assert "paused" in status(at, "Solve the 1-RF ODE for pairs")
    assert button(at, "train:rfp:").label == "Resume"
    button(at, "train:rfp:").click().run()
    assert pairs.done and pairs.n_done == 1200

    s2 = press_until_done(at, "rf2:")  # initialised from the 1-RF, on its pairs
    assert s2.meta["round"] == 2 and len(s2.meta["pairs"]) == 1000

    # the question comes first: nothing that answers it is drawn before the prediction
    assert not any("paths" in t or "Quality vs NFE" in t for t in titles(at))
    assert not straightness(at) and not verdicts(at)
    predict(at, "Much closer to the data")
    straight = straightness(at)
    assert len(straight) == 2 and straight[1] < straight[0]  # the 2-RF is straighter
    names = [t["name"] for t in spec(at, "Quality vs NFE")["data"]]
    assert {"1-RF", "2-RF", "exact v*"} <= set(names)
    one_step = {t["name"]: t["text"][0] for t in spec(at, "Quality vs NFE")["data"]
                if t["name"] in ("1-RF", "2-RF")}
    (text,) = verdicts(at)  # the verdict quotes the measured one-step distances
    assert one_step["1-RF"] in text and one_step["2-RF"] in text
    colors = {t["name"]: t["line"]["color"] for t in spec(at, "Quality vs NFE")["data"]
              if "line" in t}
    assert colors["1-RF"] == METHOD_COLORS["1-RF"] and colors["2-RF"] == METHOD_COLORS["2-RF"]

    # Go deeper: minibatch OT joins as its own method; inversion responds to its steps
    at.segmented_control(key="rf_deeper").set_value("Minibatch OT").run()
    next(b for b in at.button if b.label == "Train the OT 1-RF").click().run()
    for _ in range(40):
        if all(s.done for k, s in at.session_state["runs"].items() if k.startswith("rf1:")):
            break
        at.run()
    names = [t["name"] for t in spec(at, "OT pairs or a second round")["data"]]
    assert "1-RF, minibatch OT" in names
    at.segmented_control(key="rf_deeper").set_value("Inversion: data → noise").run()
    before = metric(at, "ED of the noise to N(0, I)")
    at.select_slider(key="rf_inv_steps").set_value(16).run()
    after = metric(at, "ED of the noise to N(0, I)")
    assert before != after and not any(v.startswith("-") for v in before + after)
    assert spec(at, "Normal QQ plot") and spec(at, "noise vs N(0, 1)")
    at.segmented_control(key="rf_deeper").set_value("Every run, side by side").run()
    assert len(spec(at, "every run")["data"]) >= 4  # exact, 1-RF, 2-RF, OT
    assert not at.exception, [e.value for e in at.exception]


def test_retraining_phase_1_marks_later_phases_stale():
    at = tiny_page()
    s1 = press_until_done(at, "rf1:")
    pairs = press_until_done(at, "rfp:")
    s2 = press_until_done(at, "rf2:")
    assert button(at, "train:rfp:").disabled and button(at, "train:rf2:").disabled  # done

    # retrain the 1-RF: the pairs and the 2-RF were made from the old one
    button(at, "reset:rf1:").click().run()
    button(at, "train:rf1:").click().run()
    assert state(at, "rf1:") is not s1 and not state(at, "rf1:").done
    assert "stale" in status(at, "Solve the 1-RF ODE for pairs")
    assert "once that one is done" in status(at, "Solve the 1-RF ODE for pairs")
    assert "stale" in status(at, "Train the 2-RF on them")
    assert button(at, "train:rfp:").disabled  # not on a half-trained 1-RF
    for _ in range(60):
        if state(at, "rf1:").done:
            break
        at.run()
    # the new 1-RF is done: the pairs can be made again, the 2-RF waits for them
    gen = button(at, "train:rfp:")
    assert gen.label == "Generate pairs" and not gen.disabled
    assert "stale" in status(at, "Solve the 1-RF ODE for pairs")
    assert button(at, "train:rf2:").disabled
    new_pairs = press_until_done(at, "rfp:")
    assert new_pairs is not pairs and "done" in status(at, "Solve the 1-RF ODE for pairs")
    assert "stale" in status(at, "Train the 2-RF on them")
    predict(at, "About as close")  # a stale 2-RF is not compared
    assert not verdicts(at)
    new_s2 = press_until_done(at, "rf2:")
    assert new_s2 is not s2 and "stale" not in status(at, "Train the 2-RF on them")
    assert verdicts(at)


@pytest.mark.parametrize("name,shape", [("u_shaped", "U"), ("uniform", "flat"),
                                        ("logit_normal", "hump")])
def test_timestep_choice_changes_the_histogram_and_the_2rf(name, shape):
    at = open_page()
    at.segmented_control(key="rf_deeper").set_value("Improved 2-RF training").run()
    at.selectbox(key="rf_tdist").set_value(name).run()
    bars = next(t for t in spec(at, "timesteps")["data"] if t["type"] == "bar")
    y = arr(bars["y"])  # 25 bins on [0, 1]
    ends, middle = (y[:3].sum() + y[-3:].sum()) / 6, y[9:16].mean()
    if shape == "U":
        assert ends > 2 * middle
    elif shape == "flat":
        assert 0.9 < ends / middle < 1.1
    else:
        assert middle > 2 * ends
    # the choice holds for the 2-RF once the section is closed (its widgets are not drawn)
    at.segmented_control(key="rf_deeper").set_value(None).run()
    at.run()
    assert f'"t_dist": "{name}"' in " ".join(c.value for c in at.code)
    if name == "u_shaped":  # the parameter a moves mass: a = 0 is uniform
        at.segmented_control(key="rf_deeper").set_value("Improved 2-RF training").run()
        at.slider(key="rf_a").set_value(0.0).run()
        y0 = arr(next(t for t in spec(at, "timesteps")["data"] if t["type"] == "bar")["y"])
        assert 0.9 < ((y0[:3].sum() + y0[-3:].sum()) / 6) / y0[9:16].mean() < 1.1


def test_pair_picker_agrees_with_an_independent_crossing_test():
    at = open_page()
    at.segmented_control(key="rf_deeper").set_value("Why pairs hardly cross").run()
    # no training needed: the exact field's own pairs hardly cross
    indep, exact = (float(metric(at, name)[0].rstrip(" %")) for name in (
        "independent pairs (the 1-RF's)", "exact 1-RF's pairs (no training)"))
    assert exact < indep / 5
    x0 = data.sample("gaussian", 1000, 1)[0]
    x1 = data.sample("moons", 1000, 0)[0]
    x1 = x1[torch.randperm(1000, generator=torch.Generator().manual_seed(0))]
    found = {}
    for j in range(1, 40):  # a crossing and a non-crossing partner for pair 0
        found.setdefault(bool(segments_cross(x0[0], x1[0], x0[j], x1[j])), j)
    for crosses, j in found.items():
        at.slider(key="rf_pair_b").set_value(j).run()
        text = " ".join(m.value for m in at.markdown)
        assert ("The lines cross" in text) == crosses
        assert ("do not cross" in text) == (not crosses)
