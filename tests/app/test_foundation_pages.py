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


def revealed(page: str, key: str, choice: str, **state):
    """``page`` with the prediction ``key`` already committed (the lesson below it drawn)."""
    at = open_page(page)
    at.session_state[f"predict:{key}"] = choice
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_straight_pairs_answer_absent_before_the_prediction():
    """Before the prediction only the pair lines and the question; after it, the exact field,
    its bent paths (the answer) and a verdict measured on them."""
    at = open_page("straight_pairs")
    assert len(charts(at)) == 1 and not at.success and not at.error
    assert not [m for m in at.metric if m.label.startswith("Straightness")]
    at = revealed("straight_pairs", "sp-bend", "Straight lines, like the pairs")
    titles = [json.loads(c)["layout"]["title"]["text"] for c in charts(at)]
    assert any(t.startswith("Exact field v*") for t in titles)
    assert any(t.startswith("Exact paths") for t in titles)
    s = float(next(m.value for m in at.metric if m.label.startswith("Straightness")))
    assert s > 0.05  # the exact paths of moons bend: the committed 'straight' is wrong
    assert at.error and "Curved paths" in at.error[0].value and f"{s:.3f}" in at.error[0].value


def test_straight_pairs_time_slider_changes_the_field():
    at = revealed("straight_pairs", "sp-bend", "Curved paths")
    title = "Exact field v*"
    field = next(c for c in charts(at) if title in json.loads(c)["layout"]["title"]["text"])
    pairs = charts(at)[0]
    at.slider(key="sp_t").set_value(0.8).run()
    assert not at.exception
    after = next(c for c in charts(at) if title in json.loads(c)["layout"]["title"]["text"])
    assert after != field  # the field at t = 0.8 differs
    assert charts(at)[0] == pairs  # the pair lines do not depend on t


def test_ot_coupling_crosses_less_than_independent():
    at = open_page("straight_pairs")
    at.session_state["sp_deeper"] = "Minibatch-OT pairs"
    at.run()
    assert not at.exception
    rows = next(d.value for d in at.dataframe if "pairs" in d.value)
    indep, ot = (float(v.rstrip(" %")) for v in rows["lines that cross"])
    assert ot < indep / 5
    shown = next(m.value for m in at.metric if m.label.startswith("Pairs of lines"))
    assert float(shown.rstrip(" %")) == indep  # section 1 shows the same pairs


def test_probe_average_matches_closed_form_and_monte_carlo():
    at = open_page("straight_pairs")
    at.session_state["sp_deeper"] = "Probe a point"
    at.run()
    at.slider(key="sp_px").set_value(1.0)
    at.slider(key="sp_py").set_value(0.5).run()
    assert not at.exception
    md = next(m.value for m in at.markdown if "Monte-Carlo" in m.value)
    pairs = re.findall(r"\((-?[\d.]+), (-?[\d.]+)\)", md)
    v_star, mc = ([float(a), float(b)] for a, b in pairs[:2])
    assert abs(v_star[0] - mc[0]) < 0.15 and abs(v_star[1] - mc[1]) < 0.15


def test_probe_default_shows_a_visible_average():
    """At the probe's default point the lines disagree (large spread) and still average to an
    arrow of clear length: the averaging is what the picture shows."""
    at = open_page("straight_pairs")
    at.session_state["sp_deeper"] = "Probe a point"
    at.run()
    md = next(m.value for m in at.markdown if "Monte-Carlo" in m.value)
    v_star = np.array([float(v) for v in re.findall(r"\((-?[\d.]+), (-?[\d.]+)\)", md)[0]])
    spread = float(re.search(r"tr Cov = ([\d.]+)", md).group(1))
    assert np.linalg.norm(v_star) > 0.8 and spread > 2.0


def test_non_gaussian_source_explains_instead_of_failing():
    at = revealed("straight_pairs", "sp-bend", "Curved paths")
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


def ed(text: str) -> float:
    """The value of a distance cell: '0.0123' or '≤ noise (0.0004)'."""
    return float(re.search(r"-?\d+\.\d+", text).group())


def test_train_live_runs_to_completion_and_reports_the_run():
    at = revealed("straight_pairs", "sp-bend", "Curved paths")
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
    # the quality chart: the run beside the exact v*, whose points below the sampling noise sit
    # on the noise band instead of dropping off the log axis
    nfe = next(json.loads(c) for c in charts(at)
               if json.loads(c)["layout"]["title"]["text"].startswith("Quality vs Euler"))
    names = [t.get("name") for t in nfe["data"]]
    assert "exact v*" in names and any("independent" in (n or "") for n in names)
    exact = next(t for t in nfe["data"] if t.get("name") == "exact v*")
    assert len(values(exact["y"])) == 8 and (values(exact["y"]) > 0).all()
    at.session_state["sp_deeper"] = "Your runs in detail"
    at.run()
    table = next(d.value for d in at.dataframe if "run" in d.value)
    assert len(table) == 1 and "independent" in table["run"][0]
    assert not any(re.match(r"\s*-", str(v)) for v in table["ED @128"])  # never a bare negative
    # the trained flow is far better than one Euler step of anything at 128 steps
    assert ed(table["ED @128"][0]) < 0.5 * ed(table["ED @1"][0])


def test_diffusion_answer_absent_before_the_prediction():
    """The error-vs-NFE chart answers the question: absent before the prediction, drawn after
    it (no button to press), with a verdict that quotes the NFE the chart's RK4 curves need."""
    at = open_page("diffusion_vs_fm")
    titles = [json.loads(c)["layout"]["title"]["text"] for c in charts(at)]
    assert len(titles) == 2 and not any("NFE" in t for t in titles)
    assert not at.success and not at.error
    at = revealed("diffusion_vs_fm", "dv-nfe", "About the same")
    specs = [json.loads(c) for c in charts(at)]
    nfe = next(s for s in specs if s["layout"]["title"]["text"].startswith("Endpoint error"))
    need = {}
    for tr in nfe["data"]:
        if (tr.get("name") or "").endswith("· RK4"):
            ok = [n for n, e in zip(values(tr["x"]), values(tr["y"]), strict=True) if e <= 0.05]
            need[tr["name"].split(":")[0]] = int(min(ok))
    verdict = (at.success or at.error)[0].value
    assert f"diffusion ODE needs {need['Diffusion']} NFE" in verdict
    assert f"flow matching {need['Flow matching']}" in verdict
    assert any(s["layout"]["title"]["text"].startswith("Mean speed") for s in specs)


def test_diffusion_page_budget_controls_change_the_samples():
    at = open_page("diffusion_vs_fm")
    at.session_state["dv_deeper"] = "Samples at a budget"
    at.run()
    before = charts(at)
    at.select_slider(key="dv_nfe").set_value(32).run()
    assert not at.exception
    assert charts(at) != before
    at.session_state["dv_deeper"] = "NFE needed per solver"
    at.run()
    assert not at.exception
    rows = at.dataframe[0].value
    assert list(rows["solver"]) == ["Euler", "Midpoint", "Heun", "RK4"]
    # a higher-order solver never needs more evaluations than Euler for the same error
    for col in [c for c in rows.columns if c.startswith("NFE needed")]:
        need = [int(v) if str(v).isdigit() else 10**9 for v in rows[col]]
        assert need[3] <= need[0]
