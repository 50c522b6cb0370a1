"""A preset page computed once is served from flowviz.store by a fresh server process: the
same charts, nothing computed again (the first visitor of a fresh server)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import hashlib, json, sys
from streamlit.testing.v1 import AppTest
from flowviz import store
at = AppTest.from_file("app.py", default_timeout=300)
at.switch_page(sys.argv[1])
at.run()
for q in [r for r in at.radio if r.label == "Your prediction"][:1]:  # the answer's figures too
    q.set_value(q.options[0])
    next(b for b in at.button if b.label == "Reveal the answer").click()
    at.run()
assert not at.exception, [e.value for e in at.exception]
specs = [c.proto.spec for c in at.get("plotly_chart")]
print(json.dumps({**store.stats, "charts": len(specs),
                  "digest": hashlib.sha256("".join(specs).encode()).hexdigest()}))
"""


def render(page: str, env: dict) -> dict:
    p = subprocess.run([sys.executable, "-c", CHILD, page], cwd=ROOT, capture_output=True,
                       text=True, env=os.environ | env, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.presets
def test_second_server_reads_what_the_first_computed(tmp_path):
    env = {"FLOWVIZ_PRESETS": "1", "FLOWVIZ_EVALS": str(tmp_path / "shipped"),
           "FLOWVIZ_CACHE": str(tmp_path / "cache")}
    first = render("views/straight_pairs.py", env)
    second = render("views/straight_pairs.py", env)
    assert first["computed"] >= 2 and first["read"] == 0  # the exact curve and the preset's
    assert second["computed"] == 0 and second["read"] == first["computed"]
    assert second["charts"] == first["charts"] >= 4
    assert second["digest"] == first["digest"]  # the very same figures
