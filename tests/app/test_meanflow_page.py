"""The MeanFlow page through streamlit.testing (no browser): it renders instantly from the exact
field, its numbers agree with an independent integration, and a tiny run trains via the button."""

import re

import torch
from streamlit.testing.v1 import AppTest

from flowviz import ExactField, data, solve
from tests.app.conftest import run_page


def open_page() -> AppTest:
    return run_page("meanflow", timeout=240)


def metric(at, start: str) -> float:
    m = next(m for m in at.metric if m.label.startswith(start))
    return float(re.sub(r"[^\d.\-]", "", m.value))


def test_renders_the_exact_mean_velocity_before_any_training():
    at = open_page()
    assert len(at.get("plotly_chart")) >= 4  # chord, running mean, (t, r) map, one-step clouds
    assert any(b.label == "Train live" and not b.disabled for b in at.button)
    assert not any("1 jump of u_θ" in m.label for m in at.metric)  # nothing trained on load


def test_one_step_miss_matches_an_independent_integration():
    """With [t, r] = [0, 1] the page's 'one step of v misses x_r by' is ‖x0 + v*(x0, 0) − x1‖,
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
    assert abs(metric(at, "One step of v misses") - miss) < 2e-3
    # at r = t the jump is the step of v itself: nothing to miss
    at.slider(key="mf_tr").set_value((0.5, 0.5)).run()
    assert metric(at, "One step of v misses") == 0.0


def test_a_tiny_run_trains_via_the_button_and_is_checked():
    at = open_page()
    at.select_slider(key="mf_steps").set_value(300)
    at.select_slider(key="mf_hidden").set_value(64)
    at.select_slider(key="mf_batch").set_value(256).run()
    next(b for b in at.button if b.label == "Train live").click().run()
    for _ in range(12):
        if any(b.label == "Train live" and b.disabled for b in at.button):
            break
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("step 300 / 300" in p.proto.text for p in at.get("progress"))
    titles = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "JVP term" in titles and "per time bucket" in titles  # stability monitors
    assert "Relative error" in titles  # the identity check (section 3)
    jump, euler = metric(at, "Energy distance, 1 jump"), metric(at, "1 Euler step of the exact v")
    assert jump < 0.2 and jump < 0.2 * euler, (jump, euler)  # one jump of u beats a step of v*
    # section 4: a shortcut model on the same data and network, for the same training time
    next(b for b in at.button if b.label == "Train Shortcut (same time)").click().run()
    for _ in range(80):  # one chunk of 50 steps per rerun
        if any(b.label == "Train Shortcut (same time)" and b.disabled for b in at.button):
            break
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(b.label == "Train Shortcut (same time)" and b.disabled for b in at.button)
    progress = [p.proto.text for p in at.get("progress")]
    mf_s, sc_s = (float(re.search(r"· ([\d.]+) s of training", p).group(1)) for p in progress)
    assert abs(sc_s - mf_s) < 0.5 * mf_s + 1.0, progress  # the same time budget, roughly
    titles = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "Same data, network and training time" in titles
    assert "Error of the interval average" in titles
