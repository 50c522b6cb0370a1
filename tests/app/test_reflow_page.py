"""The ReFlow page through streamlit.testing (no browser): it opens without training, its
controls do what they say, and its phases train a tiny pipeline when their buttons are pressed."""

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from flowviz import data
from flowviz.metrics import segments_cross

PAGE = str(Path(__file__).resolve().parents[2] / "views" / "reflow.py")
TINY = {"rf_steps1": 100, "rf_hidden": 64, "rf_batch1": 128, "rf_pairs": 1000, "rf_steps2": 100}


def open_page(n_data: int = 1000) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["n_data"] = n_data
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def spec(at: AppTest, title: str) -> dict:
    """The plotly figure whose title contains ``title``."""
    for c in at.get("plotly_chart"):
        fig = json.loads(c.proto.spec)
        if title in fig["layout"].get("title", {}).get("text", ""):
            return fig
    raise AssertionError(f"no chart titled {title!r}")


def arr(v) -> torch.Tensor:
    """A plotly JSON array: a list, or a typed array {"dtype", "bdata" (base64)}."""
    if isinstance(v, dict):
        return torch.from_numpy(np.frombuffer(base64.b64decode(v["bdata"]), v["dtype"]).copy())
    return torch.tensor(v)


def button(at: AppTest, prefix: str):
    return next(b for b in at.button if b.key.startswith(prefix))


def metric(at: AppTest, label: str) -> float:
    m = next(m for m in at.metric if m.label == label)
    return float(m.value.rstrip(" %°"))


def statuses(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if "· status:" in m.value]


def test_opens_without_training_and_says_what_to_press():
    at = open_page()
    assert any("Nothing is trained yet" in i.value for i in at.info)
    assert button(at, "train:rf1:").label == "Train 1-RF"
    assert not at.session_state["runs"]  # nothing trained on page load
    st = statuses(at)
    assert "not started" in st[0] and "waiting for the 1-RF" in st[1]
    # no training needed for the couplings: rectified pairs of the exact field hardly cross
    labels = [m.label for m in at.metric]
    assert labels.count("Crossing pairs of lines") == 3
    indep, exact, ot = (float(m.value.rstrip(" %")) for m in at.metric
                        if m.label == "Crossing pairs of lines")
    assert exact < indep / 5 and ot < indep / 5


@pytest.mark.parametrize("name,shape", [("u_shaped", "U"), ("uniform", "flat"),
                                        ("logit_normal", "hump")])
def test_timestep_control_changes_the_histogram(name, shape):
    at = open_page()
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
    if name == "u_shaped":  # the parameter a moves mass: a = 0 is uniform
        at.slider(key="rf_a").set_value(0.0).run()
        y0 = arr(next(t for t in spec(at, "timesteps")["data"] if t["type"] == "bar")["y"])
        assert 0.9 < ((y0[:3].sum() + y0[-3:].sum()) / 6) / y0[9:16].mean() < 1.1


def test_pair_picker_agrees_with_an_independent_crossing_test():
    at = open_page()
    x0 = data.sample("gaussian", 1000, 1)[0]
    x1 = data.sample("moons", 1000, 0)[0]
    x1 = x1[torch.randperm(1000, generator=torch.Generator().manual_seed(0))]
    found = {}
    for j in range(1, 40):  # a crossing and a non-crossing partner for pair 0
        c = bool(segments_cross(x0[0], x1[0], x0[j], x1[j]))
        found.setdefault(c, j)
    for crosses, j in found.items():
        at.slider(key="rf_pair_b").set_value(j).run()
        text = " ".join(m.value for m in at.markdown)
        assert ("The lines cross" in text) == crosses
        assert ("do not cross" in text) == (not crosses)


def test_phases_train_a_tiny_pipeline_on_button_presses():
    at = open_page(n_data=200)
    for k, v in TINY.items():
        at.select_slider(key=k).set_value(v)
    at.selectbox(key="rf_solver").set_value("rk4").run()
    at.select_slider(key="rf_solver_steps").set_value(4).run()
    assert not at.session_state["runs"]

    # phase 1: one tick of 100 steps trains it
    button(at, "train:rf1:").click().run()
    st1 = next(s for k, s in at.session_state["runs"].items() if k.startswith("rf1:"))
    assert st1.step == 100 and st1.done
    assert "done" in statuses(at)[0]
    assert not button(at, "train:rfp:").disabled

    # phase 2: pairs, one chunk of 1000 rows per tick (+ the 200 data points inverted)
    button(at, "train:rfp:").click().run()
    pairs = next(s for k, s in at.session_state["runs"].items() if k.startswith("rfp:"))
    assert pairs.n_done == 1000 and not pairs.done
    button(at, "pause:rfp:").click().run()
    at.run()
    assert pairs.n_done == 1000  # paused: no progress on reruns
    assert "paused" in statuses(at)[1] and button(at, "train:rfp:").label == "Resume"
    button(at, "train:rfp:").click().run()
    assert pairs.done and pairs.n_done == 1200

    # phase 3: the 2-RF, initialised from the 1-RF
    button(at, "train:rf2:").click().run()
    st2 = next(s for k, s in at.session_state["runs"].items() if k.startswith("rf2:"))
    assert st2.done and st2.meta["round"] == 2 and len(st2.meta["pairs"]) == 1000
    assert not at.exception, [e.value for e in at.exception]
    # the 2-RF is straighter and trained on pairs that cross less (measured inequalities)
    assert metric(at, "Straightness S (2-RF)") < metric(at, "Straightness S (1-RF)")
    assert metric(at, "Crossings of its training pairs (2-RF)") < \
        metric(at, "Crossings of its training pairs (1-RF)") / 5
    names = [t["name"] for t in spec(at, "Quality vs NFE")["data"]]
    assert any(n.startswith("1-RF") for n in names) and any(n.startswith("2-RF") for n in names)

    # minibatch OT as the alternative: its run joins the same chart
    next(b for b in at.button if b.label == "Train the OT 1-RF").click().run()
    names = [t["name"] for t in spec(at, "Quality vs NFE")["data"]]
    assert any("minibatch OT" in n for n in names)

    # inversion: more Euler steps change the recovered noise
    before = metric(at, "ED of the noise to N(0, I)")
    at.select_slider(key="rf_inv_steps").set_value(16).run()
    after = metric(at, "ED of the noise to N(0, I)")
    assert before != after and after >= -0.01
    assert spec(at, "Normal QQ plot")
    assert spec(at, "noise vs N(0, 1)")
