"""Hostile and careless input: every config value bounded, every file safe to read, every CLI
mistake one line on stderr with exit code 2.

The cases that would hang or eat memory if a guard were missing run in a forked child with a
time limit and an address-space cap (``isolated``), so a regression fails here instead of
taking the machine down.
"""

import dataclasses
import io
import json
import os
import pickle
import resource
import signal
import subprocess
import sys
import tempfile
import time
import typing
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import flowviz as fv
from flowviz import checkpoint
from flowviz.config import ConfigError, from_dict
from flowviz.data import PointsError, load_points
from flowviz.experiment import ReflowRun
from flowviz.images.experiment import ImageRun
from flowviz.images.frechet import ClassifierConfig
from flowviz.images.latent import LatentRun
from flowviz.methods.instaflow import InstaFlowRun
from flowviz.models import MLPConfig
from flowviz.reproduce import FigureSpec

ROOT = Path(__file__).resolve().parents[2]
TINY_FM = fv.FMRun(batch=64, n_data=200, model=MLPConfig(hidden=16, depth=1),
                   optim=fv.OptimConfig(steps=10, warmup=2))


# --- running a case in a child with a time limit and a memory cap ---------------------------
def _vm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def isolated(fn, timeout: float = 20.0, extra_mem: int = 1 << 30) -> tuple[int, str, float]:
    """(exit code, what fn wrote to stderr, seconds) of ``fn()`` run in a forked child whose
    address space may grow by at most ``extra_mem`` and that is killed after ``timeout``.
    The child exits with fn's return value (an exception: 99, its traceback on stderr)."""
    err = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            os.dup2(err.fileno(), 2)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            sys.stderr = os.fdopen(2, "w", buffering=1)
            limit = _vm_bytes() + extra_mem
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            code = fn()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:  # noqa: BLE001 - reported to the parent as code 99
            import traceback
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code if isinstance(code, int) else 0)
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.perf_counter() - t0 > timeout:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -9, "timed out", time.perf_counter() - t0
        time.sleep(0.02)
    err.seek(0)
    return os.waitstatus_to_exitcode(done[1]), err.read().decode(errors="replace"), \
        time.perf_counter() - t0


# --- 1. configs ---------------------------------------------------------------------------
def _cfg(run, **patch) -> dict:
    """asdict(run) with dotted fields replaced: _cfg(run, **{"model.hidden": 3})."""
    d = dataclasses.asdict(run)
    for key, v in patch.items():
        *path, last = key.split(".")
        node = d
        for p in path:
            node = node[p]
        node[last] = v
    return d


CONFIG_CASES = [  # (config class, dict, words the message must hold)
    (fv.FMRun, _cfg(TINY_FM, **{"model.n_classes": 10**12}),
     ["model.n_classes", "1000000000000", "0 to 1000"]),
    (fv.FMRun, _cfg(TINY_FM, **{"model.n_classes": 2 * 10**6}), ["model.n_classes", "2000000"]),
    (fv.FMRun, _cfg(TINY_FM, **{"model.n_scalars": 10**9}), ["model.n_scalars", "1 to 4"]),
    (fv.FMRun, _cfg(TINY_FM, **{"optim.seed": 10**30}), ["optim.seed", "0 to 2147483647"]),
    (fv.FMRun, _cfg(TINY_FM, **{"optim.seed": -1}), ["optim.seed", "-1"]),
    (fv.FMRun, _cfg(TINY_FM, data_seed=2**40), ["data_seed", "outside"]),
    (fv.FMRun, _cfg(TINY_FM, **{"optim.grad_clip": -1.0}), ["optim.grad_clip", "-1.0"]),
    (fv.FMRun, _cfg(TINY_FM, **{"optim.min_lr_frac": -0.5}), ["optim.min_lr_frac", "0.0 to 1.0"]),
    (fv.FMRun, _cfg(TINY_FM, **{"optim.min_lr_frac": 1.5}), ["optim.min_lr_frac", "1.5"]),
    (fv.FMRun, _cfg(TINY_FM, **{"optim.lr": 1000}), ["optim.lr", "1000"]),
    (fv.FMRun, _cfg(TINY_FM, **{"optim.lr": float("inf")}), ["optim.lr", "finite", "inf"]),
    (fv.FMRun, _cfg(TINY_FM, **{"optim.ema": float("nan")}), ["optim.ema", "finite", "nan"]),
    (fv.FMRun, _cfg(TINY_FM, **{"optim.steps": -1}), ["optim.steps", "-1", "1 to"]),
    (fv.FMRun, _cfg(TINY_FM, **{"optim.steps": 1e9}), ["optim.steps", "expected an integer"]),
    (fv.FMRun, _cfg(TINY_FM, batch=True), ["batch", "expected an integer", "True"]),
    (fv.FMRun, _cfg(TINY_FM, batch=10**9), ["batch", "1 to 8192"]),
    (fv.FMRun, _cfg(TINY_FM, h=-0.1), ["h = -0.1", "0.0 to 1.0"]),
    (fv.FMRun, _cfg(TINY_FM, n_data=-5), ["n_data = -5"]),
    (fv.FMRun, _cfg(TINY_FM, **{"model.hidden": 10**7}), ["model.hidden", "10000000"]),
    (fv.FMRun, _cfg(TINY_FM, **{"model.depth": 0}), ["model.depth = 0"]),
    (fv.FMRun, _cfg(TINY_FM, bogus=1), ["bogus", "unknown field of FMRun"]),
    (fv.FMRun, _cfg(TINY_FM, **{"model.wide": 1}), ["model.wide", "unknown field of MLPConfig"]),
    (fv.FMRun, "x" * 100, ["FMRun", "expected an object"]),
    (fv.MeanFlowRun, _cfg(fv.MeanFlowRun(), **{"meanflow.n_buckets": 10**8}),
     ["meanflow.n_buckets", "100000000", "1 to 100"]),
    (fv.MeanFlowRun, _cfg(fv.MeanFlowRun(), **{"meanflow.n_buckets": -3}),
     ["meanflow.n_buckets = -3"]),
    (fv.MeanFlowRun, _cfg(fv.MeanFlowRun(), **{"meanflow.sigma": 0}), ["meanflow.sigma = 0"]),
    (fv.ShortcutRun, _cfg(fv.ShortcutRun(), **{"shortcut.m_max": 2**20}), ["shortcut.m_max"]),
    (fv.ShortcutRun, _cfg(fv.ShortcutRun(), **{"shortcut.template.segments": [0.001] * 1000}),
     ["shortcut.template.segments", "1000 items", "at most 16"]),
    (ReflowRun, _cfg(ReflowRun(), **{"reflow.n_pairs": -5}), ["reflow.n_pairs = -5"]),
    (ReflowRun, _cfg(ReflowRun(), **{"reflow.chunk": 0}), ["reflow.chunk = 0"]),
    (ReflowRun, _cfg(ReflowRun(), rounds=99), ["rounds = 99", "2 to 3"]),
    (ReflowRun, _cfg(ReflowRun(), **{"reflow.optim.grad_clip": -2.0}),
     ["reflow.optim.grad_clip"]),
    (InstaFlowRun, _cfg(InstaFlowRun(), bogus=3), ["bogus", "unknown field of InstaFlowRun"]),
    (InstaFlowRun, _cfg(InstaFlowRun(), teacher_steps="25"), ["teacher_steps", "integer"]),
    (InstaFlowRun, _cfg(InstaFlowRun(), n_triples=10**9), ["n_triples", "1000000000"]),
    (InstaFlowRun, _cfg(InstaFlowRun(), **{"model.hidden": 10**6}), ["model.hidden"]),
    (InstaFlowRun, _cfg(InstaFlowRun(), **{"reflow.optim": []}), ["reflow.optim", "object"]),
    (InstaFlowRun, _cfg(InstaFlowRun(), rare=50), ["rare is 50", "-1: none"]),
    (ImageRun, _cfg(ImageRun(), batch=10**9), ["batch = 1000000000", "1 to 4096"]),
    (ImageRun, _cfg(ImageRun(), **{"model.base": 10**5}), ["model.base = 100000"]),
    (ImageRun, _cfg(ImageRun(), **{"model.mults": [1] * 40}), ["model.mults", "40 items"]),
    (ImageRun, _cfg(ImageRun(), **{"model.dropout": 1.0}), ["model.dropout = 1.0"]),
    (ImageRun, _cfg(ImageRun(), **{"model.n_classes": 10**12}), ["model.n_classes"]),
    (LatentRun, _cfg(LatentRun(), k=0), ["k = 0", "1 to 256"]),
    (LatentRun, _cfg(LatentRun(), **{"model.hidden": True}), ["model.hidden", "integer"]),
]


@pytest.mark.parametrize("cls, d, words", CONFIG_CASES,
                         ids=[f"{c.__name__}-{w[0]}" for c, _, w in CONFIG_CASES])
def test_a_bad_config_is_refused_in_one_sentence_naming_field_value_and_range(cls, d, words):
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as e:
        cls.from_dict(d)
    msg = str(e.value)
    assert all(w in msg for w in words), msg
    assert "\n" not in msg and len(msg) < 300
    assert time.perf_counter() - t0 < 1.0  # refused before anything is built


@pytest.mark.parametrize("cls, d, words", CONFIG_CASES[::4])
def test_the_page_upload_refuses_the_same_configs(cls, d, words):
    with pytest.raises(checkpoint.CheckpointError) as e:
        checkpoint.load_upload("run.json", json.dumps(d).encode(), cls)
    assert all(w in str(e.value) for w in words) and str(e.value).startswith("Invalid config")


def _config_classes(cls, seen=None) -> dict:
    """cls and every config dataclass nested in it."""
    seen = {} if seen is None else seen
    seen[cls] = True
    for tp in typing.get_type_hints(cls).values():
        if dataclasses.is_dataclass(tp) and tp not in seen:
            _config_classes(tp, seen)
    return seen


ALL_CONFIGS = list({c: 1 for k in (*checkpoint.KINDS.values(), ClassifierConfig, FigureSpec)
                    for c in _config_classes(k)})


@pytest.mark.parametrize("cls", ALL_CONFIGS, ids=lambda c: c.__name__)
def test_every_numeric_field_of_every_config_has_bounds_its_default_meets(cls):
    hints = typing.get_type_hints(cls)
    bounds = getattr(cls, "BOUNDS", {})
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        elem = typing.get_args(tp)[0] if typing.get_origin(tp) is tuple else tp
        if elem in (int, float):
            assert f.name in bounds, f"{cls.__name__}.{f.name} has no bounds"
    default = cls() if cls not in (ImageRun,) else ImageRun()
    for name, (lo, hi) in bounds.items():
        v = getattr(default, name)
        assert all(lo <= x <= hi for x in (v if isinstance(v, tuple) else (v,))), name


def test_a_field_just_outside_its_bounds_is_refused_and_the_bound_itself_is_not():
    d = _cfg(TINY_FM)
    for key, (lo, hi) in fv.OptimConfig.BOUNDS.items():
        for bad in (lo - 1, hi * 2 + 1):
            with pytest.raises(ConfigError, match=f"optim.{key} = "):
                from_dict(fv.OptimConfig, d["optim"] | {key: type(lo)(bad)}, "optim.")
        from_dict(fv.OptimConfig, d["optim"] | {key: lo})


def test_presets_and_the_libraries_own_configs_pass():
    for run in (fv.experiment.FAST_1RF, fv.experiment.FAST_SHORTCUT,
                fv.experiment.FAST_MEANFLOW, ReflowRun(), InstaFlowRun(), ImageRun(),
                LatentRun()):
        assert run.validated() == run
    for p in sorted((ROOT / "assets" / "presets").glob("*.json")):
        d = json.loads(p.read_text())
        checkpoint.KINDS[d["kind"]].from_dict(d["config"])


def test_a_checkpoint_whose_config_is_out_of_bounds_is_refused(tmp_path):
    state = fv.build_fm(TINY_FM)
    fv.train_steps(state, 2)
    good = checkpoint.save(tmp_path / "a.pt", state, TINY_FM)
    ck = torch.load(good, weights_only=True)
    ck["config"]["model"]["n_classes"] = 10**12
    torch.save(ck, tmp_path / "b.pt")
    with pytest.raises(checkpoint.CheckpointError, match=r"config is invalid: model\.n_classes"):
        checkpoint.load_fm(tmp_path / "b.pt")


# --- 2. files -----------------------------------------------------------------------------
def _header(**extra) -> dict:
    return {"format": checkpoint.FORMAT, "kind": "fm", "config": {}, **extra}


def _torch_zip(raw_pickle: bytes, name: str = "archive") -> bytes:
    """A torch.save-shaped archive around a hand-made pickle."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{name}/data.pkl", raw_pickle)
        z.writestr(f"{name}/byteorder", "little")
        z.writestr(f"{name}/version", "3\n")
    return buf.getvalue()


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def dag_bomb() -> bytes:
    """A list of two references to a list of two references ... 80 deep: 2**80 leaves to walk,
    ~1 KB on disk."""
    x: list = []
    for _ in range(80):
        x = [x, x]
    return _saved(_header(phases=x))


def deep_nesting() -> bytes:
    """[[[...]]] 100 000 deep, written opcode by opcode (pickle itself would recurse)."""
    n = 100_000
    return _torch_zip(b"\x80\x02" + b"]" * n + b"a" * (n - 1) + b".")


def cycle() -> bytes:
    x: list = []
    x.append(x)
    return _saved(_header(phases=x))


def zip_bomb() -> bytes:
    """A real checkpoint plus a member of 256 MiB of zeros, deflated to ~250 KB."""
    buf = io.BytesIO(_saved(_header()))
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as z:
        with z.open("archive/data/0", "w", force_zip64=True) as f:
            block = bytes(1 << 20)
            for _ in range(256):
                f.write(block)
    return buf.getvalue()


def stride_zero() -> bytes:
    """One stored float seen as a 10**6 x 10**6 tensor (stride 0): 4 TB if anything reads it."""
    return _saved(_header(phases={"run": {"ema": torch.zeros(1).expand(10**6, 10**6)}}))


def many_tensors() -> bytes:
    """20 000 views of one storage: one archive member, 20 000 tensors."""
    base = torch.zeros(4)
    return _saved(_header(phases=[base[:2] for _ in range(20_000)]))


def legacy_pickle() -> bytes:
    buf = io.BytesIO()
    torch.save(_header(), buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


FILE_CASES = [  # (name, maker, words the CheckpointError must hold)
    ("dag bomb", dag_bomb, ["unfolds into more than"]),
    ("deep nesting", deep_nesting, ["nested", "limit is 64"]),
    ("cycle", cycle, ["refers to itself"]),
    ("zip bomb", zip_bomb, ["declares", "MiB unpacked", "compressed"]),
    ("stride-0 tensor", stride_zero, ["claims more elements than it stores"]),
    ("20 000 tensors", many_tensors, ["20000 tensors", "limit is 10000"]),
    ("legacy pickle", legacy_pickle, ["not a zip archive"]),
    ("empty", lambda: b"", ["not a zip archive"]),
    ("text", lambda: b"hello, world", ["not a zip archive"]),
    ("pickle of garbage", lambda: _torch_zip(b"\x80\x02garbage"), ["Not a readable"]),
]


@pytest.mark.parametrize("name, make, words", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_a_hostile_checkpoint_is_refused_quickly_in_bounded_memory(name, make, words, tmp_path):
    raw = make()
    assert len(raw) < 2 * 2**20  # every one of them is small
    path = tmp_path / "x.pt"
    path.write_bytes(raw)

    def case():
        for source in (path, io.BytesIO(raw)):  # a local file (the CLI), an upload (a page)
            try:
                checkpoint.load_fm(source)
            except checkpoint.CheckpointError as e:
                msg = str(e)
                print(msg, file=sys.stderr)
                if "\n" in msg or not all(w in msg for w in words):
                    return 3
            else:
                return 4
        return 0

    code, err, seconds = isolated(case, timeout=30.0, extra_mem=1 << 30)
    assert code == 0, f"{name}: exit {code} after {seconds:.1f} s: {err[-600:]}"
    assert seconds < 15, f"{name} took {seconds:.1f} s"


def test_a_real_checkpoint_still_loads_after_the_inspection(tmp_path):
    state = fv.build_fm(TINY_FM)
    fv.train_steps(state, 4)
    p = checkpoint.save(tmp_path / "ok.pt", state, TINY_FM)
    run, again = checkpoint.load_fm(p)
    assert run == TINY_FM and again.step == 4
    assert checkpoint.load_upload("ok.pt", p.read_bytes(), fv.FMRun)[1].step == 4


def test_a_points_file_declaring_terabytes_is_refused_from_its_header():
    h = io.BytesIO()
    np.lib.format.write_array_header_1_0(h, {"descr": "<f8", "fortran_order": False,
                                             "shape": (10**12, 2)})

    def case():
        try:
            load_points(h.getvalue() + bytes(64), "points.npy")
        except PointsError as e:
            print(e, file=sys.stderr)
            return 0 if "1000000000000" in str(e) else 3
        return 4

    code, err, _ = isolated(case, timeout=20.0, extra_mem=256 << 20)
    assert code == 0, err


def test_a_json_config_nested_past_the_parser_is_a_sentence():
    with pytest.raises(checkpoint.CheckpointError, match="Not a JSON file.*nested too deeply"):
        checkpoint.load_upload("deep.json", b"[" * 30_000 + b"]" * 30_000, fv.FMRun)
    with pytest.raises(checkpoint.CheckpointError, match="Not a JSON file"):
        checkpoint.load_upload("huge.json", b"1" * 5000, fv.FMRun)  # > 4300 digits


# --- 3. the CLI ---------------------------------------------------------------------------
def _bad_configs(folder: Path) -> dict[str, Path]:
    out = {}
    for name, d in {
        "fm-nclasses": _cfg(TINY_FM, **{"model.n_classes": 10**12}),
        "fm-seed": _cfg(TINY_FM, **{"optim.seed": 10**30}),
        "if-unknown": _cfg(InstaFlowRun(), bogus=1),
        "if-types": _cfg(InstaFlowRun(), n_triples="8000", **{"model.hidden": 10**6}),
        "if-optim": _cfg(InstaFlowRun(), **{"teacher_optim.steps": 10**9}),
        "img-batch": _cfg(ImageRun(), batch=10**9),
        "img-batch-float": _cfg(ImageRun(), batch=1e9),
        "latent-k": _cfg(LatentRun(), k=10**6),
    }.items():
        out[name] = folder / f"{name}.json"
        out[name].write_text(json.dumps(d))
    (folder / "broken.json").write_text("{not json")
    out["broken"] = folder / "broken.json"
    (folder / "list.json").write_text("[1, 2]")
    out["list"] = folder / "list.json"
    return out


def _cli_cases(tmp: Path) -> list[list[str]]:
    cfg = _bad_configs(tmp)
    bad_pt = tmp / "bomb.pt"
    bad_pt.write_bytes(dag_bomb())
    text = tmp / "notes.txt"
    text.write_text("hello")
    return [
        ["train", "--steps", "-1"], ["train", "--steps", "0"], ["train", "--chunk", "0"],
        ["train", "--lr", "1000"], ["train", "--lr", "nan"], ["train", "--lr", "inf"],
        ["train", "--batch", "1000000000"], ["train", "--hidden", "-3"],
        ["train", "--depth", "100"], ["train", "--seed", "-1"], ["train", "--seed", "1e30"],
        ["train", "--n-data", "-5"], ["train", "--steps", "ten"],
        ["train", "--out", "/proc/x.pt", "--steps", "5"],
        ["train", "--out", "/proc/nonexistent/dir/x.pt", "--steps", "5"],
        ["train", "--out", str(tmp), "--steps", "5"],  # a folder where a file is expected
        ["train", "--config", str(cfg["fm-nclasses"])], ["train", "--config", str(cfg["fm-seed"])],
        ["train", "--config", str(cfg["broken"])], ["train", "--config", str(tmp / "none.json")],
        ["train", "--resume", str(bad_pt)],
        ["eval", "--n", "-5", str(bad_pt)], ["eval", "--n", "0", str(bad_pt)],
        ["eval", str(bad_pt)], ["eval", str(text)], ["eval", str(tmp / "missing.pt")],
        ["exact", "--n-data", "0"], ["exact", "--h", "-1"], ["exact", "--n", "1"],
        ["exact", "--h", "inf"],
        ["figure", "straight_pairs", "--seed", "-1"],
        ["figure", "straight_pairs", "--out", "/proc"],
        ["figure", "straight_pairs", "--t", "1"], ["figure", "straight_pairs", "--n-data", "1"],
        ["instaflow", "--config", str(cfg["if-unknown"])],
        ["instaflow", "--config", str(cfg["if-types"])],
        ["instaflow", "--config", str(cfg["if-optim"])], ["instaflow", "--n", "0"],
        ["instaflow", "--out", "/proc/if.pt"],
        ["theatre", "--k", "0"], ["theatre", "--n", "-1"], ["theatre", "--out", "/proc/t"],
        ["presets", "--threads", "0"],
        ["image", "train", "--config", str(cfg["img-batch"]), "--out", str(tmp / "i.pt")],
        ["image", "train", "--config", str(cfg["img-batch-float"]), "--out", str(tmp / "i.pt")],
        ["image", "train", "--config", str(cfg["list"]), "--out", str(tmp / "i.pt")],
        ["image", "train", "--config", str(cfg["img-batch"])],  # no --out
        ["image", "train", "--resume", str(bad_pt)], ["image", "train", "--chunk", "0"],
        ["image", "sample", str(bad_pt), "--out", str(tmp / "g")],
        ["image", "sample", str(bad_pt), "--nfe", "0", "--out", str(tmp / "g")],
        ["image", "sample", str(bad_pt), "--out", "/proc/g"],
        ["image", "eval", str(bad_pt), "--classifier", "c.pt", "--n", "-1"],
        ["image", "latent", "--config", str(cfg["latent-k"]), "--out", str(tmp / "l.pt")],
        ["image", "latent", "--config", str(cfg["latent-k"]), "--out", "/proc/l.pt"],
        ["image", "classifier", "--out", "/proc/c.pt"],
        ["image", "classifier", "--out", str(tmp / "c.pt"), "--steps", "-1"],
        ["nonsense"], [],
    ]


def test_every_bad_command_is_one_line_on_stderr_and_exit_code_2(tmp_path):
    from flowviz.cli import main

    cases = _cli_cases(tmp_path)
    assert len(cases) >= 41
    failures = []
    for argv in cases:
        code, err, seconds = isolated(lambda argv=argv: main(argv), timeout=20.0)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        if code != 2 or len(lines) != 1 or "Traceback" in err or seconds > 15:
            failures.append(f"{' '.join(argv)}: exit {code}, {seconds:.1f} s, {err[-300:]!r}")
    assert not failures, "\n".join(failures)


@pytest.mark.slow
@pytest.mark.parametrize("argv", [
    ["train", "--steps", "-1"], ["exact", "--n-data", "0"], ["figure", "straight_pairs",
                                                              "--out", "/proc"]])
def test_python_dash_m_flowviz_itself_exits_2_with_one_line(argv):
    r = subprocess.run([sys.executable, "-m", "flowviz", *argv], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr


def test_an_unwritable_out_fails_before_training(tmp_path):
    from flowviz.cli import main

    t0 = time.perf_counter()
    assert main(["train", "--steps", "100000", "--out", "/proc/run.pt"]) == 2
    assert time.perf_counter() - t0 < 5  # 100 000 steps were not trained first


def test_a_pickled_object_is_still_never_run(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path}/pwned",))

    (tmp_path / "e.pt").write_bytes(_torch_zip(pickle.dumps(Evil(), protocol=2)))
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.load_fm(tmp_path / "e.pt")
    assert not (tmp_path / "pwned").exists()


# --- 5. the evaluation store: a full disk or a foreign file only means computing again -----
@pytest.fixture
def fresh_store(tmp_path, monkeypatch):
    from flowviz import store

    monkeypatch.setenv("FLOWVIZ_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FLOWVIZ_EVALS", str(tmp_path / "shipped"))
    monkeypatch.setattr(store, "_MEMORY", {})
    store._clean.cache_clear()
    return store


def test_a_full_disk_never_escapes_and_leaves_no_temporary_file(fresh_store, monkeypatch):
    store = fresh_store

    def full(obj, f):  # what torch.save does when the disk fills up mid-write
        f.write(b"PK\x03\x04 half a file")
        raise RuntimeError("[enforce fail at inline_container.cc] file write failed")

    monkeypatch.setattr(store.torch, "save", full)
    assert store.fetch("k-full", lambda: {"a": torch.ones(3)})["a"].sum() == 3
    assert not list(store.cache_dir().rglob("*.tmp")) and not list(store.cache_dir().rglob("*.pt"))
    store._MEMORY.clear()
    with pytest.raises(KeyError):  # nothing half-written is read later
        store.load("k-full")


FOREIGN = [  # valid weights-only files that do not decode to a value of this code
    {"__dataclass__": "os:system", "fields": {"command": "true"}},
    {"__dataclass__": "flowviz.nowhere:Thing", "fields": {}},
    {"__dataclass__": "flowviz.experiment:NoSuchRun", "fields": {}},
    {"__dataclass__": "flowviz.experiment:FMRun", "fields": {"nonsense": 1}},
    {"__dataclass__": "flowviz.train:OptimConfig", "fields": {"seed": {"__items__": 3}}},
    {"no marker": 1},
]


@pytest.mark.parametrize("content", FOREIGN, ids=[str(c)[:40] for c in FOREIGN])
def test_a_foreign_or_stale_cache_file_is_recomputed_and_replaced(fresh_store, content):
    store = fresh_store
    p = store._path(store.cache_dir(), "k-foreign")
    p.parent.mkdir(parents=True)
    torch.save(content, p)
    assert store.fetch("k-foreign", lambda: 42) == 42
    store._MEMORY.clear()
    assert store.load("k-foreign") == 42  # the foreign file was replaced


def test_a_truncated_entry_is_ignored_and_recomputed(fresh_store):
    store = fresh_store
    store.save("k-cut", torch.arange(10_000.0))
    p = store._path(store.cache_dir(), "k-cut")
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    store._MEMORY.clear()
    assert store.fetch("k-cut", lambda: "again") == "again"


def test_stray_temporary_files_of_killed_writes_are_removed_at_start(fresh_store):
    store = fresh_store
    folder = store.cache_dir() / "ab"
    folder.mkdir(parents=True)
    old, young = folder / "old.tmp", folder / "young.tmp"
    old.write_bytes(b"x" * 1000)
    young.write_bytes(b"y")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    with pytest.raises(KeyError):
        store.load("k-any")
    assert not old.exists() and young.exists()  # a write in progress elsewhere is left alone


def test_a_write_killed_midway_leaves_only_whole_entries(fresh_store, monkeypatch):
    store = fresh_store
    big = torch.arange(float(1 << 19))  # 2 MiB a value: the kill lands inside a write
    # a fresh process (a fork of this one could stall in OpenMP) writing until it is killed
    code = ("import torch; from flowviz import store\n"
            "big = torch.arange(float(1 << 19))\n"
            "for i in range(10_000): store.save(f'k{i}', big)\n")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT,
                             env={**os.environ, "FLOWVIZ_CACHE": str(store.cache_dir())})
    t0 = time.perf_counter()
    while not list(store.cache_dir().rglob("*.pt")) and time.perf_counter() - t0 < 60:
        time.sleep(0.05)
    time.sleep(0.5)
    child.kill()
    child.wait()
    written = sorted(store.cache_dir().rglob("*.pt"))
    assert written, "nothing was written before the kill"
    store._MEMORY.clear()
    for p in written:
        assert torch.equal(store.load(p.stem), big)
    monkeypatch.setattr(store, "STRAY_AGE", -1.0)
    store._clean.cache_clear()
    store.clean_stray()
    assert not list(store.cache_dir().rglob("*.tmp"))


def test_a_checkpoint_write_killed_midway_leaves_the_previous_one_whole(tmp_path):
    run = dataclasses.replace(TINY_FM, model=MLPConfig(hidden=512, depth=3))  # ~2 MiB a save
    state = fv.build_fm(run)
    path = checkpoint.save(tmp_path / "run.pt", state, run)

    def saver():
        while True:
            checkpoint.save(path, state, run)

    pid = os.fork()
    if pid == 0:
        try:
            saver()
        finally:
            os._exit(0)
    time.sleep(1.5)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert checkpoint.load_fm(path)[1].step == 0  # whole, not torn
    assert [p.name for p in tmp_path.iterdir()] in (["run.pt"], [".run.pt.tmp", "run.pt"],
                                                    ["run.pt", ".run.pt.tmp"])
    checkpoint.save(path, state, run)  # the next save replaces the stray temporary file
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]
