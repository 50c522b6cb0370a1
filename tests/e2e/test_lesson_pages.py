"""Every page is lesson-sized in a real browser at 1400x900, normal and in presenter view: at
most 3 screens and 6 charts before anything deeper is opened, nothing wider than the main column,
no negative distance on screen, and its prediction question comes before the answer, which is
absent until a prediction is submitted. Screenshots go to the test artifacts."""

import re

import pytest

from tests.conftest import ROOT

from .conftest import VIEWPORT, wait_for_idle

pytestmark = pytest.mark.e2e

PAGES = ["", *re.findall(r'url_path="([^"]+)"', (ROOT / "app.py").read_text())]
MAX_HEIGHT, MAX_CHARTS = 3 * VIEWPORT["height"], 6
MAIN = '[data-testid="stMainBlockContainer"]'
CHART = ".js-plotly-plot"
ASK, ANSWER = '[class*="st-key-predict-"]', '[class*="st-key-answer-"]'
NEGATIVE = re.compile(r"(?:ED|distance|error)[^\n]{0,24}[−-]0\.\d+")

WIDER = f"""() => {{
  const main = document.querySelector('{MAIN}').getBoundingClientRect();
  return [...document.querySelectorAll('{MAIN} *')].filter(e => {{
    const r = e.getBoundingClientRect();
    const css = getComputedStyle(e);  // Streamlit's slider keeps an invisible range input
    return r.width > 0 && r.right > main.right + 2 && css.position !== 'fixed'
      && css.opacity !== '0' && !(e.tagName === 'INPUT' && e.type === 'range');
  }}).slice(0, 3).map(e => e.tagName + ' ' + (e.getAttribute('data-testid') || e.className));
}}"""


def _tops(page, selector: str) -> list[float]:
    """The tops of the visible elements (a chart in a closed tab has no box)."""
    loc = page.locator(selector)
    boxes = [loc.nth(i).bounding_box() for i in range(loc.count())]
    return [b["y"] for b in boxes if b]


@pytest.mark.parametrize("present", [False, True], ids=["normal", "presenter"])
@pytest.mark.parametrize("path", PAGES, ids=[p or "home" for p in PAGES])
def test_page_is_lesson_sized(page, streamlit_server, artifacts_dir, path, present):
    page.goto(f"{streamlit_server}/{path}" + ("?present=1" if present else ""))
    wait_for_idle(page, timeout=240)
    name = f"lesson-{path or 'home'}{'-presenter' if present else ''}"
    page.screenshot(path=str(artifacts_dir / f"{name}.png"), full_page=True)
    height = page.evaluate(f"() => document.querySelector('{MAIN}').scrollHeight")
    charts = page.locator(CHART).count()
    text = page.inner_text(MAIN)
    assert height <= MAX_HEIGHT, f"{name}: {height} px, more than 3 screens"
    assert charts <= MAX_CHARTS, f"{name}: {charts} charts"
    assert not NEGATIVE.findall(text), f"{name}: a negative distance {NEGATIVE.findall(text)}"
    assert page.evaluate(WIDER) == [], f"{name}: wider than the main column"

    # the question is on the page and its answer is not, until a prediction is submitted
    assert page.locator(ASK).count() >= 1, f"{name}: no prediction question"
    assert page.locator(ANSWER).count() == 0, f"{name}: the answer is shown before a prediction"
    ask = page.locator(ASK).first
    above = sum(y < ask.bounding_box()["y"] for y in _tops(page, CHART))
    ask.get_by_role("radio").first.check(force=True)
    ask.get_by_role("button", name="Reveal the answer").click()
    wait_for_idle(page, timeout=240)
    page.screenshot(path=str(artifacts_dir / f"{name}-revealed.png"), full_page=True)
    assert page.locator(ANSWER).count() >= 1, f"{name}: no answer after the prediction"
    question_bottom = ask.bounding_box()["y"]
    answer_top = page.locator(ANSWER).first.bounding_box()["y"]
    assert answer_top > question_bottom, f"{name}: the answer is above its question"
    # what the reveal drew is below the question: the charts above it are the ones there before
    assert sum(y < question_bottom for y in _tops(page, CHART)) == above, \
        f"{name}: a chart of the answer is drawn above its question"
