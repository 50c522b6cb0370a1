"""Frozen configs from JSON, strictly: unknown fields, wrong types and bad values are refused.

``from_dict(cls, d)`` rebuilds any frozen config dataclass (nested ones included) from the dict
that ``dataclasses.asdict`` made of it. A user's uploaded JSON goes through here, so every
problem becomes a ConfigError whose message names the field (``optim.steps: ...``).
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


class JSONConfig:
    """JSON in and out for a frozen config dataclass: ``to_json`` writes what ``from_dict``
    reads back (unknown fields or bad values raise ConfigError)."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, d: dict):
        return from_dict(cls, d)


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
        return tuple(_value(args[0], x, f"{where}[{i}]") for i, x in enumerate(v))
    if tp is float:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ConfigError(f"{where}: expected a finite number, got {v!r}")
        return float(v)
    if tp is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"{where}: expected an integer, got {v!r}")
        return v
    if tp in (str, bool) and not isinstance(v, tp):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {v!r}")
    return v


def from_dict(cls, d, where: str = ""):
    """An instance of the frozen dataclass ``cls`` from ``d``; missing fields take defaults."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where.rstrip('.') or cls.__name__}: expected an object, "
                          f"got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    if unknown := sorted(set(d) - names):
        raise ConfigError(f"{where}{unknown[0]}: unknown field of {cls.__name__} "
                          f"(known: {', '.join(sorted(names))})")
    hints = _hints(cls)
    kw = {k: _value(hints[k], v, where + k) for k, v in d.items()}
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
