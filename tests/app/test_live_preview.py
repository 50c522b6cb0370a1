"""While a live run trains, the fragment shows the model at work (views.live_view): snapshots
of its 1- and 4-step samples that change before the end, the loss's floor where one exists,
and real elapsed time. views.training.live_training is run as a page would run it, for each
kind of 2-D run at its page default, and on the MeanFlow page itself."""

import json
import re
import time

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import open_page


def titles(at) -> list[str]:
    return [json.loads(c.proto.spec)["layout"].get("title", {}).get("text") or ""
            for c in at.get("plotly_chart")]


def snapshot_step(at) -> int | None:
    hits = [int(m.group(1)) for t in titles(at) if (m := re.match(r"The model at step (\d+)", t))]
    assert len(hits) <= 1
    return hits[0] if hits else None


def live_state(at):
    return next(s for k, s in at.session_state["runs"].items()
                if at.session_state[f"running:{k}"])


def trains_with_snapshots(at, floors: int) -> None:
    """Press Train, then check two ticks a second apart: each shows a snapshot of the model at
    its current step before the end, the newer one later; ``floors`` dotted floor lines."""
    train = next(b for b in at.button if b.label.startswith("Train"))
    train.click().run()
    state = live_state(at)
    step1 = snapshot_step(at)
    assert step1 is not None and 0 < step1 == state.step < state.cfg.steps
    progress = [p.proto.text for p in at.get("progress")]
    assert any(re.search(r"step \d+ / \d+ · [\d.]+ s since Train", p) for p in progress)
    loss = json.loads(next(c.proto.spec for c in at.get("plotly_chart")
                           if '"Training loss"' in c.proto.spec))
    lines = [s for s in loss["layout"].get("shapes", []) if s.get("line", {}).get("dash") == "dot"]
    assert len(lines) == floors
    assert any("floor" in c.value for c in at.caption) == bool(floors)
    time.sleep(1.0)  # the preview is redrawn at most every second
    at.run()
    step2 = snapshot_step(at)
    assert step1 < step2 == state.step < state.cfg.steps  # a newer snapshot, still training
    samples = json.loads(next(c.proto.spec for c in at.get("plotly_chart")
                              if "The model at step" in c.proto.spec))
    assert {tr["name"] for tr in samples["data"]} >= {"data", "1 step", "4 steps"}
    next(b for b in at.button if b.label == "Pause").click().run()
    assert snapshot_step(at) is None  # paused: the page's own results take over
    assert not at.exception


def live_page(kind: str) -> None:
    """A page with one live run of ``kind`` at its page default (the sidebar's data)."""
    import dataclasses

    import flowviz as fv
    from flowviz import experiment as ex
    from views.training import live_training

    data = {"n_data": 1000, "h": 0.05}
    run, build, keys = {
        "fm": (fv.FMRun(**data, model=fv.models.MLPConfig(hidden=128)), fv.build_fm, ("loss",)),
        "ot": (fv.FMRun(**data, coupling="ot"), fv.build_fm, ("loss",)),
        "shortcut": (dataclasses.replace(ex.FAST_SHORTCUT, **data), ex.build_shortcut,
                     ("loss", "L_FM", "L_SC")),
        "meanflow": (dataclasses.replace(ex.FAST_MEANFLOW, **data), ex.build_meanflow,
                     ("mse_fm", "mse_mean")),
    }[kind]
    live_training(kind, lambda: build(run), loss_keys=keys, preset=run, chunk=50)


@pytest.mark.parametrize("kind,floors", [("fm", 1), ("ot", 0), ("shortcut", 2),
                                         ("meanflow", 1)])
def test_a_live_run_shows_snapshots_before_the_end(kind, floors):
    at = AppTest.from_function(live_page, args=(kind,), default_timeout=240)
    at.run()
    assert not at.exception
    trains_with_snapshots(at, floors)


def test_the_meanflow_page_shows_snapshots_while_it_trains():
    trains_with_snapshots(open_page("meanflow"), 1)
