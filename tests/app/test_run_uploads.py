"""Bad input through the real widgets: uploaded points, checkpoints and configs give
a clear message and no traceback; good files load. Presets are off here (conftest)."""

import dataclasses
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

import flowviz as fv
from flowviz import checkpoint
from flowviz.models import MLPConfig
from tests.app.conftest import open_page, reveal

DATA = dict(source="gaussian", target="moons", n_data=1000, data_seed=0, h=0.05)
TINY = fv.FMRun(batch=64, model=MLPConfig(hidden=16, depth=1),
                optim=fv.OptimConfig(steps=20, warmup=2), **DATA)


def ckpt(run) -> bytes:
    build = {fv.FMRun: fv.build_fm, fv.ShortcutRun: fv.build_shortcut}[type(run)]
    s = fv.train_steps(build(run), run.optim.steps)
    with tempfile.TemporaryDirectory() as d:
        return checkpoint.save(Path(d) / "c.pt", s, run).read_bytes()


def upload(at, name: str, raw: bytes):
    at.file_uploader[0].upload(name, raw).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def sp():
    return reveal(open_page("straight_pairs"))  # its run controls follow the answer


def errors(at) -> str:
    return " ".join(e.value for e in at.error if not e.value.startswith("You predicted"))


@pytest.mark.parametrize("name, raw, message", [
    ("cfg.json", json.dumps(dataclasses.asdict(TINY) | {"lr": 1e-3}).encode(),
     "lr: unknown field of FMRun"),
    ("cfg.json", json.dumps(dataclasses.asdict(TINY) | {"n_data": -3}).encode(),
     "n_data = -3 is outside"),
    ("cfg.json", b"{oops", "Not a JSON file"),
    ("weights.pt", b"PK\x03\x04 not really", "Not a readable checkpoint"),
])
def test_bad_config_or_checkpoint_files_are_explained(sp, name, raw, message):
    upload(sp, name, raw)
    assert message in errors(sp) and f"{name} was not loaded" in errors(sp)


def test_checkpoint_of_another_model_kind_is_refused(sp):
    run = fv.ShortcutRun(batch=64, model=MLPConfig(hidden=16, depth=1, n_scalars=2),
                         optim=fv.OptimConfig(steps=5, warmup=1), **DATA)
    upload(sp, "shortcut.pt", ckpt(run))
    assert "holds a 'shortcut' model, not 'fm'" in errors(sp)


def test_checkpoint_for_other_data_is_refused(sp):
    upload(sp, "gauss.pt", ckpt(dataclasses.replace(TINY, target="8gaussians")))
    assert "made for other data (target = '8gaussians', here 'moons')" in errors(sp)


def test_a_good_checkpoint_is_shown_and_a_good_config_trains(sp):
    upload(sp, "tiny.pt", ckpt(TINY))
    assert not errors(sp)
    state = next(iter(sp.session_state["runs"].values()))
    assert state.meta["uploaded"] == "tiny.pt" and state.done and state.step == 20
    assert any("Loaded tiny.pt: it differs from the controls in" in s.value for s in sp.success)
    sp.button_group(key="sp_deeper").set_value("Your runs in detail").run()
    assert any("ED @128" in d.value for d in sp.dataframe)  # the page evaluated the upload

    at = reveal(open_page("straight_pairs"))
    upload(at, "tiny.json", TINY.to_json().encode())
    state = next(iter(at.session_state["runs"].values()))
    assert state.meta["uploaded"] == "tiny.json" and state.step > 0  # training live
    assert state.cfg == TINY.optim


@pytest.mark.parametrize("name, raw, message", [
    ("p.csv", b"x,y,z\n1,2,3\n4,5,6\n", "Expected shape (N, 2), got (2, 3)"),
    ("p.csv", b"1,2\nnan,3\n4,5\n", "1 rows contain NaN or infinite values"),
    ("p.npy", np.save(b := io.BytesIO(), np.zeros((60_000, 2))) or b.getvalue(),
     "with N between 2 and 50000, got (60000, 2)"),
    ("p.csv", b"1.000000,2.000000\n" * 400_000, "the limit is 5 MiB"),
])
def test_bad_uploaded_points_are_explained(name, raw, message):
    at = open_page("straight_pairs")
    at.sidebar.selectbox(key="target").set_value("upload").run()
    at.sidebar.file_uploader[0].upload(name, raw).run()
    assert not at.exception, [e.value for e in at.exception]
    assert message in errors(at)
