"""Classroom layer: predict-then-reveal hides its answer until a choice is submitted, the
presenter view (?present=1) drops the download menus, and query parameters set the view."""

import json

import numpy as np
from streamlit.testing.v1 import AppTest

import flowviz as fv
from tests.app.conftest import ROOT, charts, values

REVEAL = "Reveal the answer"


PREDICTED = {"straight_pairs": {"predict:sp-bend": "Curved paths"},
             "diffusion_vs_fm": {"predict:dv-nfe": "About the same"}}


def _app(page=None, state: dict | None = None, **params) -> AppTest:
    """The app at ``page`` with URL ``params``; ``state``: session state set before the run
    (e.g. a committed prediction, so the lesson under the question is drawn)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.query_params.update(params)
    for k, v in (state or {}).items():
        at.session_state[k] = v
    if page:
        at.switch_page(f"views/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _text(at) -> str:
    return " ".join(m.value for m in [*at.markdown, *at.success, *at.error])


def _reveal(at) -> None:
    next(b for b in at.button if b.label == REVEAL).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_answer_hidden_until_a_choice_is_submitted():
    at = _app()
    question = next(r for r in at.radio if r.label == "Your prediction")
    assert question.value is None  # nothing pre-selected
    assert "lands on the data mean" not in _text(at) and not at.success and not at.error

    _reveal(at)  # submitting without a choice: a warning, still no answer
    assert any("Pick an answer first" in w.value for w in at.warning)
    assert "lands on the data mean" not in _text(at)

    next(r for r in at.radio if r.label == "Your prediction").set_value(
        "Spread over the data: the lines are straight")
    _reveal(at)
    assert at.error and "All on one point" in at.error[0].value  # wrong choice, right answer
    # the explanation quotes the data mean the page measured: check it against the data itself
    mean = fv.data.sample("moons", 1000, 0)[0].double().mean(0)
    assert f"the data mean is ({mean[0]:.2f}, {mean[1]:.2f})" in _text(at)


def test_presenter_view_from_the_url():
    normal = _app("straight_pairs", PREDICTED["straight_pairs"])
    assert normal.get("download_button"), "no download menus under the charts"
    assert normal.session_state["present"] is False

    at = _app("straight_pairs", PREDICTED["straight_pairs"], present="1")
    assert at.session_state["present"] is True
    assert not at.get("download_button")
    loads = [e for e in at.expander if e.label.startswith("Load a checkpoint")]
    assert not loads and any(e.label.startswith("Load a checkpoint") for e in normal.expander)
    assert any("font-size: 1.35rem" in m.value for m in at.markdown)  # the presenter CSS
    # figures drawn larger than in the normal view
    h = [json.loads(c)["layout"]["height"] for c in charts(at)]
    h0 = [json.loads(c)["layout"]["height"] for c in charts(normal)]
    assert len(h) == len(h0) and all(a > b for a, b in zip(h, h0, strict=True))


def test_query_params_set_dataset_and_seed():
    at = _app("straight_pairs", PREDICTED["straight_pairs"], target="checkerboard", seed="3",
              sp_t="0.3")
    assert (at.session_state["target"], at.session_state["seed"]) == ("checkerboard", 3)
    assert at.session_state["sp_t"] == 0.3
    # the data drawn in the pair-lines chart are points of checkerboard with seed 3
    spec = json.loads(charts(at)[0])
    tr = next(t for t in spec["data"] if t.get("name") == "x1 ~ data")
    drawn = np.stack([values(tr["x"]), values(tr["y"])], 1)
    data = fv.data.sample("checkerboard", 1000, 3)[0].numpy()
    dist = np.linalg.norm(drawn[:, None] - data[None], axis=-1).min(1)
    assert len(drawn) > 50 and dist.max() < 1e-5
    moons = fv.data.sample("moons", 1000, 3)[0].numpy()
    assert np.linalg.norm(drawn[:, None] - moons[None], axis=-1).min(1).max() > 0.01


def test_bad_query_params_fall_back_to_defaults():
    at = _app("straight_pairs", target="no_such_data", seed="-5", h="7")
    assert at.session_state["target"] == "moons"
    assert at.session_state["seed"] == 0 and at.session_state["h"] == 0.05


def test_downloads_offer_every_format():
    at = _app("straight_pairs", PREDICTED["straight_pairs"])
    labels = [b.label for b in at.get("download_button")]
    for fmt in ("PNG", "SVG", "CSV"):
        assert labels.count(fmt) == len(charts(at))
    assert "GIF" in labels and "NPZ" in labels  # the exact trajectories
    assert all(b.proto.deferred_file_id for b in at.get("download_button")
               if not b.proto.disabled)  # bytes are made on click, not at render


def test_cli_draws_the_page_figures():
    """`python -m flowviz figure diffusion_vs_fm` computes the same paths as the page."""
    from flowviz.reproduce import FigureSpec, diffusion_vs_fm

    at = _app("diffusion_vs_fm", PREDICTED["diffusion_vs_fm"], target="rings", seed="2")
    page = {s["layout"]["title"]["text"]: s for s in map(json.loads, charts(at))}
    cli = diffusion_vs_fm(FigureSpec("diffusion_vs_fm", "rings", 2))
    assert set(cli) == {"traj-vp", "traj-linear", "speed"}
    for panel in cli.values():
        spec = page[panel.fig.layout.title.text]  # the page draws each, under the same title
        for a, b in zip(spec["data"], panel.fig.data, strict=True):
            np.testing.assert_allclose(values(a["y"]), np.asarray(b.y, dtype=float), atol=1e-6)


def test_cli_draws_the_meanflow_jumps():
    from flowviz.reproduce import FigureSpec, meanflow

    at = _app("meanflow", target="8gaussians", seed="1")
    at.session_state["predict:mf-jump"] = "Both equally well"  # the panel is the answer
    at.run()
    title = "One step from noise, exact fields"
    page = next(s for s in map(json.loads, charts(at)) if s["layout"]["title"]["text"] == title)
    ours = meanflow(FigureSpec("meanflow", "8gaussians", 1))["mf-jumps"].fig
    for a, b in zip(page["data"], ours.data, strict=True):
        np.testing.assert_allclose(values(a["x"]), np.asarray(b.x, dtype=float), atol=1e-6)
