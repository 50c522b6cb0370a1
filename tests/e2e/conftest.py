"""End-to-end fixtures: the real Streamlit server and a headless Chromium driven by Playwright.

Chromium must be the system one at /usr/bin/chromium (`playwright install` is never used).
Without it the e2e tests are skipped, except under CI=true where they fail.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "_artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}
SERVER_START_TIMEOUT = 60.0

APP = '[data-testid="stApp"]'
APP_VIEW = '[data-testid="stAppViewContainer"]'
RUNNING = '[data-testid="stStatusWidget"]'
# Streamlit's own e2e hook: stApp carries data-test-script-state = initial | running |
# rerunRequested | stopRequested | notRunning | compilationError. Unlike the status widget it
# does not depend on client.toolbarMode ("minimal" hides the status widget altogether).
DONE_STATES = ("notRunning", "compilationError")


def _is_idle(page) -> bool:
    state = page.locator(APP).first.get_attribute("data-test-script-state")
    return state in DONE_STATES and page.locator(RUNNING).count() == 0


def wait_for_idle(page, timeout: float = 90.0, settle: float = 1.5) -> None:
    """Wait until the Streamlit script run is over.

    Idle = the app view exists, the script state is "notRunning" and the "running" status
    widget is absent, all for `settle` seconds in a row (a rerun can start a moment after a
    widget changes). `timeout` in seconds.
    """
    deadline = time.monotonic() + timeout
    page.wait_for_selector(APP_VIEW, state="attached", timeout=timeout * 1000)
    idle_since = None
    while True:
        now = time.monotonic()
        if _is_idle(page):
            idle_since = idle_since or now
            if now - idle_since >= settle:
                return
        else:
            idle_since = None
        if now > deadline:
            raise TimeoutError(f"Streamlit app still running after {timeout:.0f} s: {page.url}")
        page.wait_for_timeout(100)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.path.exists(CHROMIUM):
        msg = (
            f"{CHROMIUM} not found: install Debian's `chromium` (`playwright install` is not used)"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI: {msg}")
        pytest.skip(msg)
    return CHROMIUM


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def streamlit_server(chromium_path, artifacts_dir):
    """Start `streamlit run app.py` on a free port; yields its base URL, kills it at the end."""
    port = _free_port()
    cmd = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",  # an edit elsewhere must not read as "running"
    ]  # fmt: skip
    log_path = artifacts_dir / "server.log"
    log = open(log_path, "wb")  # closed in teardown
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # own process group: teardown kills the whole tree
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"streamlit exited with code {proc.returncode}:\n{log_path.read_text()}"
                )
            try:
                with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"streamlit not healthy after {SERVER_START_TIMEOUT:.0f} s:\n"
                    f"{log_path.read_text()}"
                )
            time.sleep(0.25)
        yield base_url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    yield page
    context.close()
