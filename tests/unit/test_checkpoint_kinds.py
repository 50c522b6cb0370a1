"""One checkpoint format for every run kind and phase; configs and files are validated strictly."""

import dataclasses
import io
import json
import math

import pytest
import torch

import flowviz as fv
from flowviz import checkpoint
from flowviz.config import ConfigError
from flowviz.experiment import ReflowRun, phases
from flowviz.methods.reflow import PairPhase, ReflowConfig
from flowviz.models import MLPConfig

OPT = fv.OptimConfig(steps=20, warmup=2)
TINY = dict(batch=64, n_data=200, optim=OPT)
RUNS = {
    "fm": fv.FMRun(model=MLPConfig(hidden=16, depth=1), **TINY),
    "shortcut": fv.ShortcutRun(model=MLPConfig(hidden=16, depth=1, n_scalars=2), **TINY),
    "meanflow": fv.MeanFlowRun(model=MLPConfig(hidden=16, depth=1, n_scalars=2, emb_scale=20.0),
                               **TINY),
    "reflow": ReflowRun(base=fv.FMRun(model=MLPConfig(hidden=16, depth=1), **TINY),
                        reflow=ReflowConfig(n_pairs=64, solver="euler", steps=4, n_real=32,
                                            batch=64, optim=OPT)),
}


def train_all(run):
    done = {}
    for name, build in phases(run).items():
        s = build(done)
        while not s.done:
            s.advance(1) if isinstance(s, PairPhase) else fv.train_steps(s, 10)
        done[name] = s
    return done


def same_history(a: list[dict], b: list[dict]) -> bool:
    """Equal logs, NaN equal to NaN (an empty loss part or time bucket logs NaN)."""
    def same(x, y):
        return x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x)
                          and math.isnan(y))
    return len(a) == len(b) and all(r.keys() == q.keys() and all(same(r[k], q[k]) for k in r)
                                    for r, q in zip(a, b, strict=True))


@pytest.mark.parametrize("kind", list(RUNS))
def test_every_kind_round_trips_through_one_format(kind, tmp_path):
    run = RUNS[kind]
    done = train_all(run)
    for resumable in (True, False):
        path = checkpoint.save(tmp_path / f"{kind}.pt", done, run, resumable=resumable)
        run2, done2 = checkpoint.load_all(path, kind=kind)
        assert run2 == run and list(done2) == list(done)
        x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
        t = torch.full((8,), 0.3)
        extra = (t,) if kind in ("shortcut", "meanflow") else ()
        for name, s in done.items():
            s2 = done2[name]
            if isinstance(s, PairPhase):
                torch.testing.assert_close(s2.result()[0].x1, s.result()[0].x1)
                torch.testing.assert_close(s2.result()[1].x0, s.result()[1].x0)
                continue
            assert s2.done and s2.step == s.step and same_history(s2.history, s.history)
            with torch.no_grad():
                torch.testing.assert_close(s2.sampler_model(x, t, *extra),
                                           s.sampler_model(x, t, *extra))


def test_a_checkpoint_of_another_kind_is_refused(tmp_path):
    run = RUNS["shortcut"]
    path = checkpoint.save(tmp_path / "s.pt", train_all(run), run)
    with pytest.raises(checkpoint.CheckpointError, match="holds a 'shortcut' model, not 'fm'"):
        checkpoint.load_fm(path)


def test_oversized_file_is_refused_before_reading():
    buf = io.BytesIO(b"\0" * 2048)
    with pytest.raises(checkpoint.CheckpointError, match="limit"):
        checkpoint.read(buf, max_bytes=1024)


@pytest.mark.parametrize("kind", list(RUNS))
def test_json_round_trip_is_exact(kind):
    run = RUNS[kind]
    assert type(run).from_dict(json.loads(run.to_json())) == run


@pytest.mark.parametrize("patch, message", [
    ({"stepz": 3}, "stepz: unknown field of FMRun"),
    ({"optim": {"steps": "many"}}, "optim.steps: expected an integer"),
    ({"optim": {"lr": float("nan")}}, "optim.lr: expected a finite number"),
    ({"optim": {"steps": 10**9}}, "optim.steps = 1000000000 is outside"),
    ({"model": {"hidden": 5000}}, "model.hidden = 5000 is outside"),
    ({"target": "cats"}, "target must be one of"),
    ({"coupling": "magic"}, "coupling must be one of"),
    ({"model": 3}, "model: expected an object"),
    ({"batch": True}, "batch: expected an integer"),
])
def test_bad_configs_are_refused_with_the_field_named(patch, message):
    d = dataclasses.asdict(fv.FMRun()) | patch
    if isinstance(patch.get("optim"), dict):
        d["optim"] = dataclasses.asdict(fv.OptimConfig()) | patch["optim"]
    if isinstance(patch.get("model"), dict):
        d["model"] = dataclasses.asdict(MLPConfig()) | patch["model"]
    with pytest.raises(ConfigError, match=message):
        fv.FMRun.from_dict(d)


def test_nested_method_settings_are_validated():
    d = dataclasses.asdict(fv.ShortcutRun())
    d["shortcut"]["template"] = {"segments": [0.5, 0.2], "weights": [0.5, 0.5]}
    with pytest.raises(ConfigError, match="shortcut.template: segments must cover the step"):
        fv.ShortcutRun.from_dict(d)
    d = dataclasses.asdict(ReflowRun())
    d["reflow"]["solver"] = "leapfrog"
    with pytest.raises(ConfigError, match="reflow.solver must be one of"):
        ReflowRun.from_dict(d)


def _bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_uploads_load_a_good_checkpoint_and_config(tmp_path):
    run = RUNS["meanflow"]
    raw = checkpoint.save(tmp_path / "m.pt", train_all(run), run).read_bytes()
    run2, state = checkpoint.load_upload("m.pt", raw, fv.MeanFlowRun)
    assert run2 == run and state.done
    run3, none = checkpoint.load_upload("c.json", run.to_json().encode(), fv.MeanFlowRun)
    assert run3 == run and none is None
    preset_style = json.dumps({"kind": "meanflow", "config": json.loads(run.to_json())})
    assert checkpoint.load_upload("p.json", preset_style.encode(), fv.MeanFlowRun)[0] == run


def _bad_uploads(tmp_path):
    fm = RUNS["fm"]
    good = checkpoint.save(tmp_path / "f.pt", train_all(fm), fm).read_bytes()
    ck = torch.load(io.BytesIO(good), weights_only=True)
    ck["phases"]["run"]["model"] = {k: torch.zeros(3, 3) for k in ck["phases"]["run"]["model"]}
    nan = torch.load(io.BytesIO(good), weights_only=True)
    nan["phases"]["run"]["ema"]["net.0.weight"][0, 0] = float("nan")
    cfg = dataclasses.asdict(fm)
    return [
        ("nan.pt", _bytes(nan), fv.FMRun, r"NaN or infinite values \(run/ema/net.0.weight\)"),
        ("notes.txt", b"hello", fv.FMRun, "Upload a .pt checkpoint or a .json config"),
        ("big.json", b" " * (70 * 1024), fv.FMRun, "limit is 64 KiB"),
        ("bad.json", b"{not json", fv.FMRun, "Not a JSON file"),
        ("u.json", json.dumps(cfg | {"lr": 1}).encode(), fv.FMRun,
         "lr: unknown field of FMRun"),
        ("v.json", json.dumps(cfg | {"batch": -5}).encode(), fv.FMRun, "batch = -5 is outside"),
        ("k.json", json.dumps({"kind": "shortcut", "config": {}}).encode(), fv.FMRun,
         "for a 'shortcut' model, not 'fm'"),
        ("other.pt", good, fv.ShortcutRun, "holds a 'fm' model, not 'shortcut'"),
        ("garbage.pt", b"\x80\x04garbage", fv.FMRun, "Not a readable checkpoint"),
        ("evil.pt", _bytes({"format": checkpoint.FORMAT, "x": _Evil()}), fv.FMRun,
         "Not a readable checkpoint"),
        ("shapes.pt", _bytes(ck), fv.FMRun, "does not match its config"),
        ("plain.pt", _bytes({"weights": torch.zeros(2)}), fv.FMRun, "Not a flowviz checkpoint"),
    ]


def test_each_bad_upload_is_refused_with_a_clear_message(tmp_path, capsys):
    for name, raw, cls, message in _bad_uploads(tmp_path):
        with pytest.raises(checkpoint.CheckpointError, match=message):
            checkpoint.load_upload(name, raw, cls)
    assert "code ran" not in capsys.readouterr().out  # nothing was unpickled as code


def test_oversized_checkpoint_upload_is_refused_but_a_local_file_loads(monkeypatch, tmp_path):
    monkeypatch.setattr(checkpoint, "MAX_BYTES", 1024)
    with pytest.raises(checkpoint.CheckpointError, match="limit is"):
        checkpoint.load_upload("big.pt", b"\0" * 4096, fv.FMRun)
    run = RUNS["fm"]  # a checkpoint larger than the upload limit, on disk: the CLI resumes it
    path = checkpoint.save(tmp_path / "big.pt", train_all(run), run)
    assert path.stat().st_size > 1024 and checkpoint.load(path)[0] == run
    with pytest.raises(checkpoint.CheckpointError, match="limit is"):
        checkpoint.read(path, max_bytes=1024)
