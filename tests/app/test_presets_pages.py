"""Every 2-D page opens on its preset: trained results at the sidebar's defaults, no training,
a caption naming the CLI command, and "Retrain live" one click away (issue 8)."""

import pytest

from flowviz import presets
from tests.app.conftest import open_page

PAGES = {"straight_pairs": ["fm:"], "shortcut": ["sc:", "scfm:"], "meanflow": ["mf:", "sc-vs:"],
         "reflow": ["rf1:", "rfp:", "rf2:"]}


def open_comparison(at, page: str) -> None:
    """Draw a page's runs: Straight pairs' training and Shortcut's same-time comparison after
    their predictions are committed, MeanFlow's comparison under Go deeper (each is left out
    of the page until then)."""
    if page == "straight_pairs":
        at.session_state["predict:sp-bend"] = "Curved paths"
        at.run()
    elif page == "shortcut":
        at.session_state["predict:sc-fm"] = "4 to 8"
        at.run()
    elif page == "meanflow":
        at.segmented_control(key="mf_deeper").set_value("MeanFlow vs Shortcut").run()
    elif page == "reflow":
        at.session_state["predict:rf-one-step"] = "Much closer to the data"
        at.run()
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.parametrize("page", list(PAGES))
def test_page_opens_on_its_preset_without_training(page):
    at = open_page(page)
    open_comparison(at, page)
    runs = at.session_state["runs"]
    for prefix in PAGES[page]:
        key = next(k for k in runs if k.startswith(prefix))
        state = runs[key]
        assert state.done and state.meta["preset"] in presets.specs()
        assert presets.specs()[state.meta["preset"]].page == page
        flag = f"running:{key}"
        assert flag not in at.session_state or not at.session_state[flag]  # nothing trains
    notes = [c.value for c in at.caption if c.value.startswith("**Preset**")]
    assert notes and all("python -m flowviz presets" in n for n in notes)
    assert any(b.label == "Retrain live" and not b.disabled for b in at.button)
    assert len(at.get("plotly_chart")) >= 5  # the trained results are drawn
    assert not any("Nothing is trained yet" in i.value for i in at.info)


def test_retrain_live_replaces_the_preset_with_a_live_run():
    at = open_page("straight_pairs")
    open_comparison(at, "straight_pairs")
    key = next(k for k in at.session_state["runs"] if k.startswith("fm:"))
    preset_state = at.session_state["runs"][key]
    next(b for b in at.button if b.label == "Retrain live").click().run()
    live = at.session_state["runs"][key]
    assert live is not preset_state and "preset" not in live.meta
    assert 0 < live.step < live.cfg.steps  # one chunk trained so far, from scratch
    assert at.session_state[f"running:{key}"]
    assert not any(c.value.startswith("**Preset**") for c in at.caption)
    assert not at.exception


def test_retraining_the_reflow_1rf_marks_the_preset_pairs_and_2rf_stale():
    at = open_page("reflow")
    runs = at.session_state["runs"]
    old_pairs = runs[next(k for k in runs if k.startswith("rfp:"))]
    next(b for b in at.button if b.key.startswith("train:rf1:")).click().run()
    assert at.session_state["running:" + next(k for k in runs if k.startswith("rf1:"))]
    status = {m.value.split("**")[1]: m.value for m in at.markdown if " · " in m.value
              and m.value.startswith("**")}
    assert "stale" in status["Solve the 1-RF ODE for pairs"]
    assert "stale" in status["Train the 2-RF on them"]
    pairs_button = next(b for b in at.button if b.key.startswith("train:rfp:"))
    assert pairs_button.disabled and pairs_button.label == "Generate pairs"  # 1-RF not done
    assert runs[next(k for k in runs if k.startswith("rfp:"))] is old_pairs  # kept, marked
    assert any("stale" in m.value for m in at.markdown if m.value.startswith("Status:"))
    assert not at.exception


def test_other_settings_train_live():
    at = open_page("shortcut")
    at.select_slider(key="sc_steps").set_value(500).run()
    assert any(b.label == "Train live" for b in at.button)
    assert not any(c.value.startswith("**Preset**") for c in at.caption)


def test_sessions_share_preset_evaluations_but_not_their_runs():
    one, two = open_page("meanflow"), open_page("meanflow")
    assert dict.__len__(two.session_state["mf_results"]) == 0  # read from the shared store
    metrics = [[(m.label, m.value) for m in at.metric] for at in (one, two)]
    assert metrics[0] == metrics[1] and metrics[0]
    key = next(k for k in one.session_state["runs"] if k.startswith("mf:"))
    assert one.session_state["runs"][key] is not two.session_state["runs"][key]
    next(b for b in one.button if b.label == "Retrain live").click().run()
    live, other = one.session_state["runs"][key], two.session_state["runs"][key]
    assert "preset" not in live.meta and other.meta["preset"] and other.done  # untouched
    # the live run's evaluation is this session's own, never the shared preset entry
    assert not any(k[0] == key and k[1] == live.step for k in dict.keys(
        two.session_state["mf_results"]))


@pytest.mark.parametrize("page, main, mate", [("shortcut", "sc:", "scfm:"),
                                              ("meanflow", "mf:", "sc-vs:")])
def test_same_time_comparison_opens_on_its_partner_preset(page, main, mate):
    """The section that trains a second model for the same time opens on the preset made for
    it, and says the step costs it was given were timed when the preset was trained."""
    at = open_page(page)
    open_comparison(at, page)
    runs = at.session_state["runs"]
    m = runs[next(k for k in runs if k.startswith(main))]
    o = runs[next(k for k in runs if k.startswith(mate))]
    assert presets.partner_of(m.meta["preset"]).name == o.meta["preset"]
    cost = [c.value for c in at.caption
            if c.value.startswith("Measured cost per step when the preset was trained")]
    assert len(cost) == 1 and f"{o.cfg.steps} steps" in cost[0]
