"""Flow theatre in a real browser: Play moves the points client-side (no Streamlit rerun per
frame), the time slider scrubbed to t = 1 shows every method's endpoints, and clicking a point
rings the same noise point in every panel."""

import base64

import numpy as np
import pytest

from .conftest import APP, RUNNING, wait_for_idle
from .test_browser import LOAD_TIMEOUT, _assert_no_exception, _screenshot

pytestmark = pytest.mark.e2e

PLAYER = 'iframe[srcdoc*="window.theatre"]'

# For `ms` milliseconds, on every repaint: the first method's first point (its path holds one
# "Mx yh0" per point), and whether
# Streamlit (in the parent page) ran a script meanwhile.
WATCH = """async ([ms, running, app]) => {
  const top = window.parent.document, seen = new Set();
  const p = document.querySelector('path.pts');
  let reruns = 0;
  const t0 = performance.now(), drawn0 = window.theatre.drawn;
  while (performance.now() - t0 < ms) {
    await new Promise(r => requestAnimationFrame(r));
    seen.add(p.getAttribute('d').split('h0')[0]);  // the first point's "Mx y"
    const state = top.querySelector(app).getAttribute('data-test-script-state');
    if (top.querySelector(running) || state === 'running') reruns++;
  }
  return {positions: seen.size, reruns, drawn: window.theatre.drawn - drawn0};
}"""


def _open_theatre(page, url):
    page.goto(f"{url}/theatre")
    wait_for_idle(page, LOAD_TIMEOUT)
    page.get_by_text("1-RF", exact=True).first.click()  # the prediction, then reveal
    page.get_by_role("button", name="Reveal the answer").click()
    wait_for_idle(page, LOAD_TIMEOUT)
    _assert_no_exception(page)
    page.locator(PLAYER).wait_for(state="visible", timeout=60_000)
    frame = page.frame_locator(PLAYER)
    frame.locator("path.pts").first.wait_for(state="attached", timeout=30_000)
    return frame, page.locator(PLAYER).element_handle().content_frame()


def _endpoints(frame) -> dict:
    """Each method's drawn points and the last state its spec carries (decoded here)."""
    out = frame.evaluate("""() => Object.fromEntries(window.theatre.spec.methods.map(m => [
        m.key, {n: m.n, ts: m.ts, xs: m.xs, drawn: document.querySelector(
          `path[data-method="${m.key}"]`).getAttribute('d').split('h0').filter(Boolean)
          .map(p => p.slice(1).split(' ').map(Number))}]))""")
    res = {}
    for key, m in out.items():
        xs = np.frombuffer(base64.b64decode(m["xs"]), "<f4").reshape(len(m["ts"]), m["n"], 2)
        res[key] = (np.array(m["drawn"]), xs[-1])
    return res


def test_play_runs_in_the_browser_and_scrubbing_shows_every_endpoint(page, streamlit_server,
                                                                     artifacts_dir):
    locator, frame = _open_theatre(page, streamlit_server)
    _screenshot(page, artifacts_dir / "theatre_defaults.png")
    locator.get_by_role("button", name="Play").click()
    seen = frame.evaluate(WATCH, [2000, RUNNING, APP])
    assert seen["positions"] >= 10 and seen["drawn"] >= 10, seen
    assert seen["reruns"] == 0, "Streamlit reran the script while the theatre played"
    page.wait_for_timeout(1500)  # to the end of the 3 s flight
    _screenshot(page, artifacts_dir / "theatre_played.png")

    slider = locator.locator("#t")  # scrub: the slider's right end is t = 1
    box = slider.bounding_box()
    page.mouse.click(box["x"] + 2, box["y"] + box["height"] / 2)  # back to the start
    page.mouse.move(box["x"] + 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] + 30, box["y"] + box["height"] / 2, steps=10)
    page.mouse.up()
    assert locator.locator("#clock").inner_text() == "t = 1.00"
    ends = _endpoints(frame)
    assert len(ends) == 6
    for key, (drawn, last) in ends.items():
        assert drawn.shape == (400, 2) and np.allclose(drawn, last, atol=1e-3), key
    assert page.locator(RUNNING).count() == 0


def test_clicking_a_point_rings_it_in_every_panel(page, streamlit_server, artifacts_dir):
    locator, frame = _open_theatre(page, streamlit_server)
    # click where the 1-RF's point 123 is drawn
    at = frame.evaluate("""() => {
      const p = document.querySelector('path[data-method="rf1"]');
      const [x, y] = p.getAttribute('d').split('h0')[123].slice(1).split(' ').map(Number);
      const s = new DOMPoint(x, y).matrixTransform(p.parentNode.getScreenCTM());
      return [s.x, s.y];
    }""")
    box = page.locator(PLAYER).bounding_box()
    page.mouse.click(box["x"] + at[0], box["y"] + at[1])
    assert frame.evaluate("() => window.theatre.sel()") == 123
    rings = frame.evaluate("""() => Array.from(document.querySelectorAll('circle.sel'))
        .map(c => [+c.getAttribute('cx'), +c.getAttribute('cy'), c.style.display])""")
    ends = _endpoints(frame)
    drawn = {k: d[123] for k, (d, _) in ends.items()}
    assert len(rings) == 6 and all(r[2] == "" for r in rings), rings
    assert np.allclose([r[:2] for r in rings], list(drawn.values()), atol=1e-3)
    assert "noise point 123" in locator.locator("#sel").inner_text()
    box = page.get_by_role("spinbutton", name="Noise point")
    box.fill("123")
    box.press("Enter")
    wait_for_idle(page, LOAD_TIMEOUT)
    _assert_no_exception(page)
    # the followed particle's paths start at that noise point, under every method
    starts = page.evaluate("""() => document.querySelector(
        '[data-testid="stPlotlyChart"] .js-plotly-plot')._fullData
        .filter(t => t.mode === 'lines+markers' && t.showlegend !== false)
        .map(t => [t.x[0], t.y[0]])""")
    frame = page.locator(PLAYER).element_handle().content_frame()
    noise = _endpoints(frame)  # the spec's states: their first is the noise
    spec0 = frame.evaluate("() => window.theatre.spec.methods[0].xs")
    x0 = np.frombuffer(base64.b64decode(spec0), "<f4")[2 * 123:2 * 124]
    assert len(starts) == len(noise) == 6 and np.allclose(starts, x0, atol=1e-5), starts
    _screenshot(page, artifacts_dir / "theatre_particle.png")
