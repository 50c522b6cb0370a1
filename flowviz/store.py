"""Evaluations kept on disk, so that a fresh server's first visitor sees a preset page at once.

A computation that is a pure function of its inputs (the exact field's quality-vs-NFE sweep, a
preset network's curves and trajectories) is stored under a digest of its name, its inputs and
the code that computes it. A look-up tries the store shipped in ``assets/evals`` (written by
``python -m views.warm`` from the presets; ``$FLOWVIZ_EVALS`` names another), then the user's
cache (``$FLOWVIZ_CACHE``, default ``~/.cache/flowviz``), where a miss is written. Changing
the code changes every key, so a stale entry is never read: it only misses. ``FLOWVIZ_STORE=0``
turns the store off.

Values are trees of tensors, numpy arrays, numbers, strings, lists, tuples, dicts and flowviz
dataclasses. They are saved with ``torch.save`` and read back with ``weights_only=True``:
nothing beyond tensors and plain containers is unpickled, and a dataclass is rebuilt only if
it is defined under ``flowviz``. Whatever goes wrong with the disk (full, read-only, a torn or
foreign file, a class that is not there any more) only turns a look-up into a computation: a
failed write leaves no temporary file, and those of killed writes are removed at start.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import hashlib
import importlib
import inspect
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
_MEMORY: dict[str, object] = {}  # this process's hits and writes, digest -> encoded value
stats = {"read": 0, "computed": 0}  # look-ups served from disk, values computed and stored


class Unstorable(TypeError):
    """An argument that has no stable digest, or a value that cannot be stored safely."""


def enabled() -> bool:
    return os.environ.get("FLOWVIZ_STORE", "1") != "0"


def shipped() -> Path:
    """The read-only store that ships with the project (assets/evals, or $FLOWVIZ_EVALS)."""
    return Path(os.environ.get("FLOWVIZ_EVALS") or ROOT / "assets" / "evals")


def cache_dir() -> Path:
    """Where misses are written: $FLOWVIZ_CACHE, else ~/.cache/flowviz (``views.warm`` points it
    at assets/evals to refresh the shipped store)."""
    return Path(os.environ.get("FLOWVIZ_CACHE") or Path.home() / ".cache" / "flowviz")


# --- keys --------------------------------------------------------------------------------------
def _feed(h, obj) -> None:
    """Feed a stable description of ``obj`` into hash ``h`` (same value, same bytes, in every
    process: no id(), no hash() of str)."""
    if isinstance(obj, np.generic):  # before float: np.float64 is a float
        _feed(h, obj.item())
    elif obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    elif isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, np.ndarray):
        _feed(h, torch.from_numpy(np.ascontiguousarray(obj)))
    elif isinstance(obj, torch.nn.Module):
        h.update(f"M{type(obj).__qualname__};".encode())
        for k, v in obj.state_dict().items():
            _feed(h, k)
            _feed(h, v)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        h.update(f"D{type(obj).__module__}.{type(obj).__qualname__}(".encode())
        for f in dataclasses.fields(obj):
            _feed(h, f.name)
            _feed(h, getattr(obj, f.name))
        h.update(b")")
    elif isinstance(obj, (list, tuple)):
        h.update(f"{type(obj).__name__}[".encode())
        for x in obj:
            _feed(h, x)
        h.update(b"]")
    elif isinstance(obj, dict):
        h.update(b"{")
        for k in sorted(obj, key=repr):
            _feed(h, k)
            _feed(h, obj[k])
        h.update(b"}")
    elif isinstance(obj, functools.partial):
        h.update(b"P")
        _feed(h, (obj.func, obj.args, obj.keywords))
    elif inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isbuiltin(obj):
        _feed(h, f"{obj.__module__}.{obj.__qualname__}")
        if inspect.ismethod(obj):
            _feed(h, obj.__self__)
    elif isinstance(obj, (torch.device, torch.dtype)):
        _feed(h, str(obj))
    else:
        raise Unstorable(f"no stable digest for a {type(obj).__qualname__}")


def digest(*parts) -> str:
    h = hashlib.sha256()
    _feed(h, parts)
    return h.hexdigest()[:32]


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


@functools.cache
def _imports(p: Path) -> tuple[Path, ...]:
    """The flowviz/views files that file ``p`` imports directly (read with ast)."""
    pkg = p.parent.relative_to(ROOT).parts if p.is_relative_to(ROOT) else ()
    out = []
    for node in ast.walk(ast.parse(p.read_text(), str(p))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = [*pkg[:len(pkg) - node.level + 1], *(node.module or "").split(".")] \
                if node.level else (node.module or "").split(".")
            mod = ".".join(x for x in parts if x)
            names = [mod, *(f"{mod}.{a.name}" for a in node.names)]
        else:
            continue
        for name in names:
            if name.split(".")[0] in ("flowviz", "views"):
                for i in range(1, name.count(".") + 2):  # a.b.c imports a and a.b too
                    if (f := _module_file(".".join(name.split(".")[:i]))) is not None:
                        out.append(f.resolve())
    return tuple(out)


def imported_files(path: Path) -> set[Path]:
    """``path`` and every flowviz/views file it imports, transitively."""
    seen, todo = set(), [Path(path).resolve()]
    while todo:
        if (p := todo.pop()) not in seen:
            seen.add(p)
            todo.extend(_imports(p))
    return seen


@functools.cache
def source_digest(*files: str) -> str:
    """The code an evaluation depends on: the given files (the page or module that computes
    it) and every flowviz or views file they import, transitively."""
    deps = set().union(*(imported_files(Path(f)) for f in files if f and Path(f).is_file()))
    h = hashlib.sha256()
    for p in sorted(deps):
        h.update(p.relative_to(ROOT).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


@functools.cache
def file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


# --- values ------------------------------------------------------------------------------------
def encode(v):
    """``v`` as tensors and plain containers (what torch.load(weights_only=True) reads)."""
    if isinstance(v, np.generic):  # before float: np.float64 is a float
        return v.item()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().clone()
    if isinstance(v, np.ndarray):
        return {"__ndarray__": torch.from_numpy(np.array(v))}
    if isinstance(v, list):
        return [encode(x) for x in v]
    if isinstance(v, tuple):
        return tuple(encode(x) for x in v)
    if isinstance(v, dict):
        return {"__items__": [(encode(k), encode(x)) for k, x in v.items()]}
    if dataclasses.is_dataclass(v) and type(v).__module__.startswith("flowviz."):
        return {"__dataclass__": f"{type(v).__module__}:{type(v).__qualname__}",
                "fields": {f.name: encode(getattr(v, f.name)) for f in dataclasses.fields(v)}}
    raise Unstorable(f"cannot store a {type(v).__qualname__}")


def decode(v):
    if isinstance(v, list):
        return [decode(x) for x in v]
    if isinstance(v, tuple):
        return tuple(decode(x) for x in v)
    if isinstance(v, dict):
        if "__ndarray__" in v:
            return v["__ndarray__"].numpy()
        if "__items__" in v:
            return {decode(k): decode(x) for k, x in v["__items__"]}
        mod, _, name = v["__dataclass__"].partition(":")
        if not mod.startswith("flowviz."):
            raise Unstorable(f"refusing to build {mod}:{name}")
        cls = importlib.import_module(mod)
        for part in name.split("."):
            cls = getattr(cls, part)
        return cls(**{k: decode(x) for k, x in v["fields"].items()})
    return v


# --- the store ---------------------------------------------------------------------------------
def _path(directory: Path, key: str) -> Path:
    return directory / key[:2] / f"{key}.pt"


def load(key: str):
    """The stored value of ``key``, or raise KeyError."""
    if not enabled():
        raise KeyError(key)
    clean_stray()
    if key in _MEMORY:
        return decode(_MEMORY[key])
    for d in (shipped(), cache_dir()):
        p = _path(d, key)
        if p.exists():
            try:
                enc = torch.load(p, map_location="cpu", weights_only=True)
                value = decode(enc)
            except Exception:  # noqa: BLE001 - a torn or foreign file, a class that is gone:
                continue  # it is recomputed and rewritten
            _MEMORY[key] = enc
            stats["read"] += 1
            return value
    raise KeyError(key)


STRAY_AGE = 60.0  # seconds: a .tmp older than this is left by a killed write, not a live one


def clean_stray() -> int:
    """Remove the temporary files of killed writes (older than STRAY_AGE) from the user's
    cache, once per process and folder; returns how many."""
    return _clean(str(cache_dir()))


@functools.cache
def _clean(folder: str) -> int:
    old, n = time.time() - STRAY_AGE, 0
    for p in Path(folder).glob("*/*.tmp"):
        try:
            if p.stat().st_mtime < old:
                p.unlink()
                n += 1
        except OSError:
            pass
    return n


def save(key: str, value) -> bool:
    """Store ``value`` under ``key`` (False, and nothing written, if it cannot be stored)."""
    if not enabled():
        return False
    try:
        enc = encode(value)
    except Unstorable:
        return False
    _MEMORY[key] = enc
    stats["computed"] += 1
    p, tmp = _path(cache_dir(), key), None
    clean_stray()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p.parent, suffix=".tmp", delete=False) as f:
            tmp = f.name
            torch.save(enc, f)
        os.replace(tmp, p)  # atomic: a reader never sees half a file
        tmp = None
    except (OSError, RuntimeError):  # read-only or full (torch.save raises RuntimeError): the
        pass  # process memory still serves it
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return True


def fetch(key: str, compute):
    """The value stored under ``key``, else ``compute()``, stored."""
    try:
        return load(key)
    except Exception:  # noqa: BLE001 - a miss, or an in-process copy that no longer decodes
        value = compute()
        save(key, value)
        return value


def stored(fn=None, *, code: tuple[str, ...] = ()):
    """Decorator: ``fn(*args, **kw)`` looked up in the store before it is computed. The key is
    fn's qualified name, its arguments' digest and the source digest of fn's file (+ ``code``).
    Arguments without a stable digest (see ``digest``) just call through."""
    if fn is None:
        return functools.partial(stored, code=code)
    files = (inspect.getsourcefile(fn), *code)

    @functools.wraps(fn)
    def wrapper(*args, **kw):
        try:
            key = digest(fn.__module__, fn.__qualname__, source_digest(*files), args, kw)
        except Unstorable:
            return fn(*args, **kw)
        return fetch(key, lambda: fn(*args, **kw))

    return wrapper
