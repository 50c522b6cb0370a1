"""One visual language across pages: every trace that names a method has that method's colour,
on every page and after training; the sidebar says which of its controls a page ignores."""

import json

import pytest

from flowviz.viz.style import METHOD_COLORS, method_of
from tests.app.conftest import charts, open_page, reveal

PAGES = ["straight_pairs", "diffusion_vs_fm", "reflow", "instaflow", "shortcut", "meanflow",
         "scoreboard", "scaling"]


def method_traces(at) -> list[tuple[str, str, str]]:
    """(trace name, its method, its colour) for every trace on the page that names a method."""
    out = []
    for spec in charts(at):
        for tr in json.loads(spec)["data"]:
            name = tr.get("name") or ""
            color = (tr.get("line") or {}).get("color") or (tr.get("marker") or {}).get("color")
            if (m := method_of(name)) is not None and isinstance(color, str):
                out.append((name, m, color))
    return out


@pytest.mark.presets
@pytest.mark.parametrize("name", PAGES)
def test_every_method_trace_has_its_colour(name):
    at = reveal(open_page(name))
    traces = method_traces(at)
    assert traces, f"{name}: no trace names a method"
    wrong = [(n, m, c) for n, m, c in traces if c.upper() != METHOD_COLORS[m].upper()]
    assert not wrong, f"{name}: traces not in their method's colour: {wrong}"


@pytest.mark.presets
def test_colours_stay_after_training():
    at = reveal(open_page("straight_pairs"))
    before = {m: c for _, m, c in method_traces(at)}
    at.select_slider(key="sp_steps").set_value(300).run()
    next(b for b in at.button if b.label.startswith("Train")).click().run()
    for _ in range(60):
        if at.session_state["runs"] and all(s.done for s in at.session_state["runs"].values()):
            break
        at.run()
    after = method_traces(at)
    assert after and all(c.upper() == METHOD_COLORS[m].upper() for _, m, c in after), after
    assert all(before[m] == c for _, m, c in after if m in before)


def test_sidebar_disables_what_a_page_ignores():
    def disabled(at):
        return {w.key: w.disabled for w in [*at.sidebar.selectbox, *at.sidebar.slider,
                                            *at.sidebar.select_slider]}

    sp, sc = open_page("straight_pairs"), open_page("scaling")
    assert not any(disabled(sp)[k] for k in ("target", "source", "n_data", "h"))
    assert all(disabled(sc)[k] for k in ("target", "source", "n_data", "h"))
    assert not disabled(sc)["device"]
    assert any("images" in i.value for i in sc.sidebar.info)
    insta = open_page("instaflow")
    assert disabled(insta)["target"] and not disabled(insta)["n_data"]
    assert any("named parts" in i.value for i in insta.sidebar.info)
