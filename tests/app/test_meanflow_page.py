"""The MeanFlow page through streamlit.testing (no browser): it renders instantly from the exact
field, its numbers agree with an independent integration, and a tiny run trains via the button."""

import json
import re

import pytest
import torch
from streamlit.testing.v1 import AppTest

from flowviz import ExactField, data, solve
from tests.app.conftest import run_page


def open_page() -> AppTest:
    return run_page("meanflow", timeout=240)


def metric(at, start: str) -> float:
    m = next(m for m in at.metric if m.label.startswith(start))
    return float(re.sub(r"[^\d.\-]", "", m.value))


def titles(at) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_renders_the_exact_mean_velocity_before_any_training():
    at = open_page()
    assert len(at.get("plotly_chart")) == 2  # chord and running mean; nothing trained yet
    assert any(b.label == "Train live" and not b.disabled for b in at.button)
    assert not any("u_θ, one jump" in m.label for m in at.metric)  # nothing trained on load


def test_the_one_call_answer_is_drawn_only_after_the_prediction():
    """Before a prediction: no one-step clouds, no distances, no verdict. After: the clouds,
    both distances, and a verdict that agrees with them."""
    at = open_page()
    assert "One step from noise, exact fields" not in titles(at)
    assert not [m for m in at.metric if "distance" in m.label] and not at.success
    at.radio(key="choice:mf-jump").set_value("A step of v⋆: x0 + v⋆(x0, 0)")
    next(b for b in at.button if b.label == "Reveal the answer").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "One step from noise, exact fields" in titles(at)
    step, jump = metric(at, "One step of v⋆: distance"), metric(at, "One jump of u⋆: distance")
    assert step > 0.5 and abs(jump) < 0.01  # every step lands on the data mean; the jump lands
    assert at.error and "**A jump of u⋆: x0 + u⋆(x0, 0, 1)**" in at.error[0].value  # told so


def test_one_step_miss_matches_an_independent_integration():
    """With [t, r] = [0, 1] the page's 'one v step misses' is ‖x0 + v*(x0, 0) − x1‖,
    x1 the end of the exact flow: recomputed here with dopri5 (the page uses RK4)."""
    at = open_page()
    at.slider(key="mf_px").set_value(-1.5)
    at.slider(key="mf_py").set_value(-2.0)
    at.slider(key="mf_tr").set_value((0.0, 1.0)).run()
    assert not at.exception
    field = ExactField(data.sample("moons", 1000, 0)[0], h=0.05)  # the page's default settings
    x0 = torch.tensor([[-1.5, -2.0]])
    x1 = solve(field, x0, "dopri5", rtol=1e-7, atol=1e-7).x
    miss = (x0 + field(x0, torch.zeros(1)) - x1).norm().item()
    assert abs(metric(at, "One v step misses") - miss) < 2e-3
    # at r = t the jump is the step of v itself: nothing to miss
    at.slider(key="mf_tr").set_value((0.5, 0.5)).run()
    assert metric(at, "One v step misses") == 0.0


def test_a_tiny_run_trains_via_the_button_and_is_checked():
    at = open_page()
    at.select_slider(key="mf_steps").set_value(300)
    at.select_slider(key="mf_hidden").set_value(64)
    at.select_slider(key="mf_batch").set_value(256).run()
    next(b for b in at.button if b.label == "Train live").click().run()
    for _ in range(60):
        if any(b.label == "Train live" and b.disabled for b in at.button):
            break
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("step 300 / 300" in p.proto.text for p in at.get("progress"))
    jump, euler = metric(at, "u_θ, one jump"), metric(at, "Exact v⋆, one step")
    assert jump < 0.2 and jump < 0.2 * euler, (jump, euler)  # one jump of u beats a step of v*
    # Go deeper: each section drawn only when chosen
    for pick, title in (("Stability monitors", "JVP term"),
                        ("Loss per time bucket", "by the row's time t"),
                        ("Identity on its own flow", "Relative error")):
        assert not any(title in t for t in titles(at))
        at.segmented_control(key="mf_deeper").set_value(pick).run()
        assert not at.exception, [e.value for e in at.exception]
        assert any(title in t for t in titles(at)), pick
    # a shortcut model on the same data and network, for the same training time
    at.segmented_control(key="mf_deeper").set_value("MeanFlow vs Shortcut").run()
    next(b for b in at.button if b.label == "Train Shortcut (same time)").click().run()
    for _ in range(120):  # one chunk of up to 50 steps per rerun
        if any(b.label == "Train Shortcut (same time)" and b.disabled for b in at.button):
            break
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(b.label == "Train Shortcut (same time)" and b.disabled for b in at.button)
    # the same time budget: the Shortcut run's steps are MeanFlow's times the ratio of the two
    # step costs timed on this machine (wall times themselves swing with the machine's load)
    sc = next(v for k, v in at.session_state["runs"].items() if k.startswith("sc-vs:"))
    ms_mf, ms_sc = sc.meta["cost"]
    assert sc.cfg.steps == max(1, round(300 * ms_mf / ms_sc))
    assert sc.model.cfg.hidden == 64 and sc.model.cfg.n_scalars == 2  # the same network
    cost = next(c.value for c in at.caption if c.value.startswith("Measured cost per step"))
    assert f"Shortcut gets {sc.cfg.steps} steps for the MeanFlow run's 300" in cost
    assert "Same data, network and training time" in titles(at)
    assert "Error of the interval average against the exact u*" in titles(at)


@pytest.mark.presets
def test_bucket_losses_are_drawn_on_a_decade_axis_in_sequence():
    """The loss per time bucket: one line per bucket in a sequential colour order, a log axis
    labelled in decades, the legend beside the plot (not over the axis title)."""
    at = open_page()
    at.segmented_control(key="mf_deeper").set_value("Loss per time bucket").run()
    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                if "by the row's time t" in json.loads(c.proto.spec)["layout"]["title"]["text"])
    lines = [t for t in spec["data"] if t["name"].startswith("t ∈")]
    assert len(lines) >= 4 and len({t["line"]["color"] for t in lines}) == len(lines)
    y = spec["layout"]["yaxis"]
    assert y["type"] == "log" and all(re.fullmatch(r"[\d.]+|(\d×)?10[⁻⁰-⁹]+", s)
                                      for s in y["ticktext"]), y["ticktext"]
    assert spec["layout"]["legend"]["x"] > 1  # beside the plot
