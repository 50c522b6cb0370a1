"""Every page loads in a real browser without an exception, draws its charts, and reruns."""

import pytest

from .conftest import wait_for_idle

pytestmark = pytest.mark.e2e

# url_path of every page ("" is the home page).
PAGES = ["", "straight_pairs", "diffusion_vs_fm", "reflow", "instaflow", "shortcut", "meanflow",
         "scoreboard", "scaling"]

LOAD_TIMEOUT = 180.0  # seconds: pages compute on first load (slow when the machine is busy)
EXCEPTION = '[data-testid="stException"]'
CHART = '.js-plotly-plot, [data-testid="stPlotlyChart"]'
SLIDER = '[data-testid="stSlider"]'


def _name(path: str) -> str:
    return path or "home"


def _assert_no_exception(page) -> None:
    errors = page.locator(EXCEPTION)
    assert errors.count() == 0, f"st.exception on {page.url}:\n{errors.first.inner_text()}"
    assert page.get_by_text("Traceback").count() == 0, f"'Traceback' shown on {page.url}"


def _has_visible_chart(page, timeout: float = 30.0) -> bool:
    """True once some chart has a non-empty bounding box (plotly draws asynchronously)."""
    for _ in range(int(timeout * 10)):
        charts = page.locator(CHART)
        for i in range(charts.count()):
            box = charts.nth(i).bounding_box()
            if box and box["width"] > 0 and box["height"] > 0:
                return True
        page.wait_for_timeout(100)
    return False


def _screenshot(page, path) -> None:
    """Full-page screenshot. Streamlit scrolls inside its main section, not the document, so
    grow the viewport to the content height for the shot, then restore it."""
    viewport = page.viewport_size
    height = page.evaluate(
        """() => Math.max(document.documentElement.scrollHeight,
            ...[...document.querySelectorAll('[data-testid="stMain"], section.main')]
                .map(e => e.scrollHeight))"""
    )
    page.set_viewport_size({"width": viewport["width"], "height": max(viewport["height"], height)})
    page.wait_for_timeout(300)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(viewport)


@pytest.mark.parametrize("path", PAGES, ids=_name)
def test_page_renders(page, streamlit_server, artifacts_dir, path):
    page.goto(f"{streamlit_server}/{path}")
    wait_for_idle(page, LOAD_TIMEOUT)
    _assert_no_exception(page)
    if path and page.locator('[class*="st-key-predict-"]').count():
        ask = page.locator('[class*="st-key-predict-"]').first  # the charts follow the answer
        ask.get_by_role("radio").first.check(force=True)
        ask.get_by_role("button", name="Reveal the answer").click()
        page.wait_for_timeout(500)
        wait_for_idle(page, LOAD_TIMEOUT)
        _assert_no_exception(page)
    if path:
        assert _has_visible_chart(page), f"no chart with a non-zero size on {page.url}"
    _screenshot(page, artifacts_dir / f"{_name(path)}.png")


def test_straight_pairs_slider_reruns(page, streamlit_server, artifacts_dir):
    page.goto(f"{streamlit_server}/straight_pairs")
    wait_for_idle(page, LOAD_TIMEOUT)
    _assert_no_exception(page)

    sliders = page.locator(SLIDER)
    assert sliders.count() > 0, "straight_pairs has no slider"
    # The thumb: a native range input in recent Streamlit, a role="slider" div in older ones.
    thumb = sliders.first.locator('input[type="range"], [role="slider"]').first

    def value():
        if thumb.evaluate("e => e.tagName") == "INPUT":
            return thumb.input_value()
        return thumb.get_attribute("aria-valuenow")

    before = value()
    at_max = before == (thumb.get_attribute("max") or thumb.get_attribute("aria-valuemax"))
    thumb.focus()
    thumb.press("ArrowLeft" if at_max else "ArrowRight")
    page.wait_for_timeout(500)  # let the widget commit its value and the rerun start
    wait_for_idle(page, LOAD_TIMEOUT)

    assert value() != before, "slider value did not change"
    _assert_no_exception(page)
    _screenshot(page, artifacts_dir / "straight_pairs_after_slider.png")
