"""Frozen configs from JSON, strictly: unknown fields, wrong types and bad values are refused.

``from_dict(cls, d)`` rebuilds any frozen config dataclass (nested ones included) from the dict
that ``dataclasses.asdict`` made of it. A user's uploaded JSON, a CLI config and a checkpoint's
config all go through here, so every problem becomes a ConfigError whose message names the
field (``optim.steps: ...``).

Every numeric field is bounded: a config class lists ``BOUNDS = {field: (lo, hi)}`` right after
its fields, the most one shared classroom server should be asked to build or run (a tuple
field's bound applies to each element). A value outside is refused before anything is built.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing


class ConfigError(ValueError):
    """A config dict that does not describe a valid run; the message is shown to the user."""


SEED = (0, 2**31 - 1)  # every seed (offsets are added to it; numpy takes < 2**32)
MAX_ITEMS = 16  # elements of any tuple field (U-Net levels, template segments)


class JSONConfig:
    """JSON in and out for a frozen config dataclass: ``to_json`` writes what ``from_dict``
    reads back (unknown fields or bad values raise ConfigError)."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, d: dict):
        return from_dict(cls, d)

    def validated(self):
        """This config, checked as if it had come from JSON (a CLI's flags, a page's widgets);
        raises ConfigError."""
        return from_dict(type(self), dataclasses.asdict(self))


def read_json(path, cls=None, max_bytes: int = 64 * 2**10):
    """A ``cls`` config (None: a JSON object) from the file ``path``; any problem is a
    ConfigError."""
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as e:
        raise ConfigError(f"cannot read the config {path}: {e.strerror or e}") from None
    if len(raw) > max_bytes:
        raise ConfigError(f"the config {path} is larger than {max_bytes // 1024} KiB")
    value = parse_json(raw)
    if cls is None and not isinstance(value, dict):
        raise ConfigError(f"the config {path} is not a JSON object")
    return value if cls is None else from_dict(cls, value)


def parse_json(raw: bytes):
    """The JSON value of ``raw``; not JSON (or nested past the parser's depth) is a ConfigError."""
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError as e:  # undecodable bytes, bad JSON, an integer of > 4300 digits
        raise ConfigError(f"not a JSON file ({str(e)[:120]})") from None
    except RecursionError:
        raise ConfigError("the JSON is nested too deeply") from None


@functools.cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _value(tp, v, where: str):
    """``v`` as the annotated type ``tp`` (JSON lists become tuples; ints pass for floats)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
        return _value(tp, v, where)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, v, where + ".")
    if origin is tuple:
        if not isinstance(v, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {type(v).__name__}")
        if len(v) > MAX_ITEMS:
            raise ConfigError(f"{where}: {len(v)} items; at most {MAX_ITEMS} are allowed")
        return tuple(_value(args[0], x, f"{where}[{i}]") for i, x in enumerate(v))
    if tp is float:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ConfigError(f"{where}: expected a finite number, got {_short(v)}")
        return float(v)
    if tp is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"{where}: expected an integer, got {_short(v)}")
        return v
    if tp in (str, bool) and not isinstance(v, tp):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {_short(v)}")
    return v


def _short(v) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def check_bounds(cls, kw: dict, where: str = "") -> None:
    """Refuse a value of ``kw`` (field -> value, checked types) outside ``cls.BOUNDS``."""
    for name, (lo, hi) in getattr(cls, "BOUNDS", {}).items():
        if name not in kw:
            continue
        for v in kw[name] if isinstance(kw[name], tuple) else (kw[name],):
            if not lo <= v <= hi:
                raise ConfigError(f"{where}{name} = {_short(v)} is outside the allowed range "
                                  f"{lo} to {hi}")


def from_dict(cls, d, where: str = ""):
    """An instance of the frozen dataclass ``cls`` from ``d``; missing fields take defaults."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where.rstrip('.') or cls.__name__}: expected an object, "
                          f"got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    if unknown := sorted(str(k) for k in set(d) - names):
        raise ConfigError(f"{where}{unknown[0]}: unknown field of {cls.__name__} "
                          f"(known: {', '.join(sorted(names))})")
    hints = _hints(cls)
    kw = {k: _value(hints[k], v, where + k) for k, v in d.items()}
    check_bounds(cls, kw, where)
    try:
        obj = cls(**kw)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where.rstrip('.') or cls.__name__}: {e}") from None
    if hasattr(obj, "check"):
        try:
            obj.check()
        except ValueError as e:
            raise ConfigError(f"{where.rstrip('.') or cls.__name__}: {e}") from None
    return obj


def flat(cfg, prefix: str = "") -> dict:
    """A config as {"optim.steps": 3000, ...}, nested configs flattened with dots."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            out |= flat(v, f"{prefix}{f.name}.")
        else:
            out[prefix + f.name] = v
    return out


def diff(a, b) -> dict:
    """{field: (a's value, b's value)} for every flattened field where two configs differ."""
    fa, fb = flat(a), flat(b)
    return {k: (fa.get(k), fb.get(k)) for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k)}
