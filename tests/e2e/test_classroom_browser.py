"""Classroom features in a real browser: a chart's download menu gives a PNG and a CSV, the
presenter view (?present=1) enlarges the text and drops the menus, and the URL sets the data."""

import csv
import io

import pytest
from PIL import Image

from .conftest import wait_for_idle
from .test_browser import LOAD_TIMEOUT, _assert_no_exception, _screenshot

pytestmark = pytest.mark.e2e

MENU = '[data-testid="stPopover"] button'
DOWNLOAD = '[data-testid="stDownloadButton"] button'


def _download(page, label: str) -> bytes:
    page.locator(MENU).first.click()
    button = page.locator(DOWNLOAD).filter(has_text=label).first
    button.wait_for(state="visible", timeout=10_000)
    with page.expect_download(timeout=60_000) as dl:
        button.click()
    path = dl.value.path()
    page.keyboard.press("Escape")
    return open(path, "rb").read()


def test_download_menu_gives_csv_and_png(page, streamlit_server, artifacts_dir):
    page.goto(f"{streamlit_server}/straight_pairs?target=checkerboard&seed=3")
    wait_for_idle(page, LOAD_TIMEOUT)
    _assert_no_exception(page)
    shown = page.evaluate("""() => [...document.querySelectorAll(
        '[data-testid="stSidebar"] input')].map(e => e.value)""")
    assert "Checkerboard" in shown, shown  # the URL chose the data
    rows = list(csv.DictReader(io.StringIO(_download(page, "CSV").decode())))
    assert {"trace", "name", "x", "y"} <= set(rows[0])
    assert any(r["name"] == "x1 ~ data" for r in rows)
    png = Image.open(io.BytesIO(_download(page, "PNG")))  # kaleido + Chromium, offline
    assert png.format == "PNG" and png.size[0] > 600 and png.size[1] > 600
    _assert_no_exception(page)


def test_presenter_view(page, streamlit_server, artifacts_dir):
    page.goto(f"{streamlit_server}/straight_pairs?present=1")
    wait_for_idle(page, LOAD_TIMEOUT)
    _assert_no_exception(page)
    size = page.evaluate("""() => parseFloat(getComputedStyle(document.querySelector(
        '[data-testid="stMain"] [data-testid="stMarkdownContainer"] p')).fontSize)""")
    side = page.evaluate("""() => parseFloat(getComputedStyle(document.querySelector(
        '[data-testid="stSidebar"] [data-testid="stWidgetLabel"] p')).fontSize)""")
    assert size >= 21 and side < 18, (size, side)  # the page grows, the sidebar keeps its size
    assert page.locator(MENU).count() == 0, "download menus shown in the presenter view"
    _screenshot(page, artifacts_dir / "straight_pairs_presenter.png")
