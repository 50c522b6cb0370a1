"""requirements.txt's lower bound for Streamlit is one the app really works with: that release is
installed beside the venv (no dependencies, shadowing the newer one) and every page is opened
under it through AppTest, in a child process."""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PAGES = re.findall(r'st\.Page\("(views/[a-z_]+\.py)"', (ROOT / "app.py").read_text())
OPEN_EVERY_PAGE = f"""
import streamlit
from streamlit.testing.v1 import AppTest
assert streamlit.__version__.startswith({{version!r}}), streamlit.__version__
at = AppTest.from_file({str(ROOT / "app.py")!r}, default_timeout=240)
at.run()
for page in {PAGES!r}:
    at.switch_page(page)
    at.run()
    assert not at.exception, (page, [e.value for e in at.exception])
print("opened", len({PAGES!r}), "pages")
"""


def lower_bound(package: str) -> str:
    text = (ROOT / "requirements.txt").read_text()
    return re.search(rf"^{package}>=([\d.]+)", text, re.M).group(1)


def test_pages_open_with_the_oldest_streamlit_allowed(tmp_path):
    version = lower_bound("streamlit")
    target = tmp_path / "old"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                          str(target), f"streamlit=={version}", "blinker", "cachetools"],
                         capture_output=True, text=True, timeout=300)
    if pip.returncode:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"could not install streamlit=={version}: {pip.stderr[-500:]}")
        pytest.skip(f"no package registry here: {pip.stderr[-200:]}")
    run = subprocess.run([sys.executable, "-c", OPEN_EVERY_PAGE.format(version=version)],
                         cwd=ROOT, env=os.environ | {"PYTHONPATH": str(target)},
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"streamlit {version}: {run.stderr[-2000:]}"
    assert f"opened {len(PAGES)} pages" in run.stdout
