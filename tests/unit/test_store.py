"""flowviz.store: evaluations on disk, keyed so that a stale or foreign entry is never read."""

import dataclasses
import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from flowviz import store
from flowviz.analysis import quality_vs_nfe
from flowviz.exact import ExactField
from flowviz.experiment import FMRun
from flowviz.models import MLPConfig, TimeMLP
from flowviz.train import OptimConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_store(tmp_path, monkeypatch):
    """An empty user cache and shipped store for each test, and no in-process copies."""
    monkeypatch.setenv("FLOWVIZ_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FLOWVIZ_EVALS", str(tmp_path / "shipped"))
    monkeypatch.setattr(store, "_MEMORY", {})
    monkeypatch.setattr(store, "stats", {"read": 0, "computed": 0})


def test_values_round_trip_through_weights_only_files(tmp_path):
    run = FMRun(target="moons", optim=OptimConfig(steps=7))
    value = {"nfe": ([1, 2, 4], [0.5, 0.25, np.float64(0.125)]), "traj": torch.randn(3, 4, 2),
             "grid": np.arange(12, dtype=np.uint8).reshape(3, 4), 7: None, "run": run,
             "flags": [True, "x"]}
    store.save("k1", value)
    store._MEMORY.clear()  # read the file, not the in-process copy
    back = store.load("k1")
    assert back["nfe"] == ([1, 2, 4], [0.5, 0.25, 0.125]) and isinstance(back["nfe"], tuple)
    assert torch.equal(back["traj"], value["traj"])
    assert back["grid"].dtype == np.uint8 and np.array_equal(back["grid"], value["grid"])
    assert back[7] is None and back["run"] == run and back["flags"] == [True, "x"]
    assert store.stats == {"read": 1, "computed": 1}


def test_digest_is_a_function_of_the_value_not_the_object():
    a = FMRun(target="moons", model=MLPConfig(hidden=64))
    b = dataclasses.replace(a)
    assert a is not b and store.digest(a, 1.5) == store.digest(b, 1.5)
    assert store.digest(a) != store.digest(dataclasses.replace(a, target="circles"))
    assert store.digest(torch.zeros(3)) != store.digest(torch.zeros(4))
    assert store.digest(torch.zeros(3)) != store.digest(torch.zeros(3, dtype=torch.float64))
    torch.manual_seed(0)
    m1 = TimeMLP(MLPConfig(hidden=16))
    m2 = TimeMLP(MLPConfig(hidden=16))
    assert store.digest(m1) != store.digest(m2)  # different weights
    m2.load_state_dict(m1.state_dict())
    assert store.digest(m1) == store.digest(m2)
    with pytest.raises(store.Unstorable):
        store.digest(object())


def test_digest_is_the_same_in_another_process():
    """The bug this store replaces: keys built with hash() of strings differ per process."""
    code = ("from flowviz import store; from flowviz.experiment import FMRun; "
            "print(store.digest('fm', FMRun(target='moons'), 'auto'))")
    out = {subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip() for _ in range(2)}
    assert out == {store.digest("fm", FMRun(target="moons"), "auto")}


def test_stored_computes_once_then_reads(monkeypatch):
    calls = []

    @store.stored
    def curve(model, x0, ref):
        calls.append(1)
        with torch.no_grad():
            return quality_vs_nfe(model, x0, ref, nfes=(1, 4))

    torch.manual_seed(0)
    model = TimeMLP(MLPConfig(hidden=16))
    x0, ref = torch.randn(30, 2), torch.randn(30, 2)
    first = curve(model, x0, ref)
    store._MEMORY.clear()
    assert curve(model, x0, ref) == first and len(calls) == 1
    assert store.stats == {"read": 1, "computed": 1}
    curve(model, x0 + 1, ref)  # other inputs: computed
    with torch.no_grad():
        model.net[0].weight.add_(0.1)  # other weights: computed
    curve(model, x0, ref)
    assert len(calls) == 3


def test_objects_without_a_digest_are_refused():
    field = ExactField(torch.randn(50, 2, generator=torch.Generator().manual_seed(1)))
    with pytest.raises(store.Unstorable):
        store.digest(functools.partial(field))


def test_arguments_without_a_digest_call_through():
    calls = []

    @store.stored
    def f(obj):
        calls.append(1)
        return 3

    assert f(object()) == 3 and f(object()) == 3 and len(calls) == 2
    assert store.stats["computed"] == 0


def test_a_torn_file_is_recomputed(tmp_path):
    store.save("k2", {"a": torch.ones(2)})
    p = store._path(store.cache_dir(), "k2")
    p.write_bytes(b"not a torch file")
    store._MEMORY.clear()
    with pytest.raises(KeyError):
        store.load("k2")
    assert store.fetch("k2", lambda: 5) == 5


def test_only_flowviz_dataclasses_are_rebuilt(tmp_path):
    evil = {"__dataclass__": "subprocess:Popen", "fields": {"args": "true"}}
    torch.save(evil, tmp_path / "x.pt")
    with pytest.raises(store.Unstorable):
        store.decode(torch.load(tmp_path / "x.pt", weights_only=True))

    @dataclasses.dataclass
    class Foreign:
        a: int = 1

    assert store.save("k3", Foreign()) is False  # not stored, not an error


def test_shipped_store_is_read_first_and_never_written(tmp_path):
    shipped = Path(store.shipped())
    key = store.digest("x")
    p = store._path(shipped, key)
    p.parent.mkdir(parents=True)
    torch.save(store.encode([1, 2]), p)
    assert store.fetch(key, lambda: [9]) == [1, 2]
    store.save(store.digest("y"), [3])
    assert not store._path(shipped, store.digest("y")).exists()
    assert store._path(store.cache_dir(), store.digest("y")).exists()


def test_code_digest_follows_imports(tmp_path):
    """Editing any file a page imports (transitively) changes the page's code digest."""
    files = {p.relative_to(ROOT).as_posix() for p in store.imported_files(ROOT / "views" /
                                                                          "straight_pairs.py")}
    assert {"views/straight_pairs.py", "views/cache.py", "flowviz/exact.py",
            "flowviz/analysis.py", "flowviz/solvers.py"} <= files
    assert "views/scaling.py" not in files and "benchmarks/bench_render.py" not in files


def test_store_off(monkeypatch):
    monkeypatch.setenv("FLOWVIZ_STORE", "0")
    assert store.save("k4", 1) is False
    with pytest.raises(KeyError):
        store.load("k4")


def test_shipped_evaluations_are_readable():
    """Every file in assets/evals loads with weights_only and decodes."""
    files = sorted((ROOT / "assets" / "evals").rglob("*.pt"))
    assert files, "assets/evals is empty: run python -m views.warm"
    for p in files:
        store.decode(torch.load(p, weights_only=True))
    json.dumps([p.name for p in files])
