"""The app shell and the first two pages through streamlit.testing (no browser)."""

import json
import re

import numpy as np
import torch

from tests.app.conftest import charts, open_page, values


def test_home_maps_pages_to_article_sections():
    at = open_page()
    text = " ".join(m.value for m in at.markdown)
    assert "Straight pairs" in text or "straight" in text.lower()
    assert any("§2.1" in c.value for c in at.caption)
    assert any("§4.1" in c.value for c in at.caption)  # every page has its card, none "coming"
    assert not any("Coming next" in h.value for h in at.subheader)
    assert at.sidebar.selectbox(key="target").value == "moons"


def test_straight_pairs_time_slider_changes_the_field():
    at = open_page("straight_pairs")
    before = charts(at)
    assert len(before) >= 5  # two pair-line panels, field, trajectories, probe
    at.slider(key="sp_t").set_value(0.8).run()
    assert not at.exception
    after = charts(at)
    assert after[2] != before[2]  # the field at t = 0.8 differs
    assert after[0] == before[0]  # the pair lines do not depend on t


def test_ot_coupling_crosses_less_than_independent():
    at = open_page("straight_pairs")
    crossing = [m for m in at.metric if m.label.startswith("Crossing pairs")]
    indep, ot = (float(m.value.rstrip(" %")) for m in crossing[:2])
    assert ot < indep / 5


def test_probe_average_matches_closed_form_and_monte_carlo():
    at = open_page("straight_pairs")
    at.slider(key="sp_px").set_value(1.0)
    at.slider(key="sp_py").set_value(0.5).run()
    assert not at.exception
    md = next(m.value for m in at.markdown if "Monte-Carlo" in m.value)
    pairs = re.findall(r"\((-?[\d.]+), (-?[\d.]+)\)", md)
    v_star, mc = ([float(a), float(b)] for a, b in pairs[:2])
    assert abs(v_star[0] - mc[0]) < 0.15 and abs(v_star[1] - mc[1]) < 0.15


def test_non_gaussian_source_explains_instead_of_failing():
    at = open_page("straight_pairs")
    at.sidebar.selectbox(key="source").set_value("8gaussians").run()
    assert not at.exception
    assert any("Gaussian source" in i.value for i in at.info)


def test_bad_upload_shows_a_message_not_a_traceback():
    at = open_page("straight_pairs")
    at.session_state["upload_error"] = "Expected shape (N, 2), got (10, 3)."
    at.sidebar.selectbox(key="target").set_value("upload").run()
    assert not at.exception
    assert any("(N, 2)" in e.value for e in at.error)


def test_uploaded_points_are_the_data():
    at = open_page("straight_pairs")
    pts = torch.tensor([[3.0, 3.0], [-3.0, 3.0]]).repeat(50, 1)
    at.session_state["upload_points"] = pts
    at.session_state["upload_digest"] = "test"
    at.sidebar.selectbox(key="target").set_value("upload").run()
    assert not at.exception
    spec = json.loads(charts(at)[0])
    data_trace = next(t for t in spec["data"] if t.get("name") == "x1 ~ data")
    assert set(np.abs(values(data_trace["x"])).round(4)) == {3.0}


def test_train_live_runs_to_completion_and_reports_the_run():
    at = open_page("straight_pairs")
    at.select_slider(key="sp_steps").set_value(300)
    at.select_slider(key="sp_hidden").set_value(64).run()
    train = next(b for b in at.button if b.label == "Train live")
    train.click().run()
    for _ in range(10):
        if any(b.label == "Train live" and b.disabled for b in at.button):
            break
        at.run()
    assert not at.exception
    assert any("step 300 / 300" in p.proto.text for p in at.get("progress"))
    table = next(d.value for d in at.dataframe if "run" in d.value)
    assert len(table) == 1 and "independent" in table["run"][0]
    # the trained flow is far better than one Euler step of anything at 128 steps
    assert table["ED @128"][0] < 0.5 * table["ED @1"][0]


def test_diffusion_page_budget_controls_change_the_samples():
    at = open_page("diffusion_vs_fm")
    before = charts(at)
    at.select_slider(key="dv_nfe").set_value(32).run()
    assert not at.exception
    after = charts(at)
    assert before != after
    assert len(at.dataframe) == 0  # the NFE sweep runs only when asked
    at.button(key="dv_measure").click().run()
    assert not at.exception
    rows = at.dataframe[0].value
    assert list(rows["solver"]) == ["Euler", "RK4"]
    # a higher-order solver never needs more evaluations than Euler for the same error
    for path in ("VP", "FM"):
        need = [int(v) if str(v).isdigit() else 10**9 for v in rows[f"NFE needed, {path}"]]
        assert need[1] <= need[0]
