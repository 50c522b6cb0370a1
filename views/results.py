"""A page's evaluations of its runs, per session, with preset runs' entries computed once for
the server and kept on disk (flowviz.store)."""

from __future__ import annotations

import sys
import threading

import streamlit as st

from flowviz import presets, store

_SHARED: dict = {}  # (store, (run key, step)) -> a preset run's evaluation, for every session
_PENDING: dict = {}  # the same keys -> an Event while one session computes them
_SHARED_LOCK = threading.Lock()


class Results(dict):
    """A page's per-session cache of evaluations keyed (run key, step). Entries of preset runs
    are the same in every session (same weights, same data), so they live in one server-wide
    store, computed once: a session asking while another computes one waits for it. They are
    also kept on disk (flowviz.store, keyed by the preset's weights and the page's code), so a
    fresh server serves them from assets/evals or the user's cache without computing. An entry
    is written when it is assigned: build it whole, then assign (later changes stay in memory)."""

    def __init__(self, name: str, page: str = ""):
        super().__init__()
        self.name, self.page = name, page

    @staticmethod
    def _runs(rk) -> list:
        """The runs an entry key names: rk[0], and any other member that is a run key (an
        entry comparing two runs)."""
        runs = st.session_state.get("runs", {})
        keys = [x for x in rk if isinstance(x, str) and x in runs] \
            if isinstance(rk, tuple) and rk else []
        return [runs[x] for x in keys] if keys and keys[0] == rk[0] else []

    def _shared(self, rk) -> tuple | None:
        """A key for the server-wide store when every run the entry uses is a preset."""
        used = self._runs(rk)
        return (self.name, rk) if used and all("preset" in s.meta for s in used) else None

    def _disk_key(self, k) -> str:
        weights = [presets.weights_digest(s.meta["preset"]) for s in self._runs(k[1])]
        return store.digest("results", k, weights, store.source_digest(self.page))

    def __contains__(self, rk) -> bool:
        if dict.__contains__(self, rk):
            return True
        if (k := self._shared(rk)) is None:
            return False
        with _SHARED_LOCK:
            if k in _SHARED:
                return True
            try:
                _SHARED[k] = store.load(self._disk_key(k))
                return True
            except KeyError:
                pass
            if (ev := _PENDING.get(k)) is None:
                _PENDING[k] = threading.Event()
                return False  # this session computes it
        ev.wait(timeout=120)
        with _SHARED_LOCK:  # not there: the other session failed; this one computes it
            if k not in _SHARED:
                _PENDING[k] = threading.Event()
            return k in _SHARED

    def __getitem__(self, rk):
        if dict.__contains__(self, rk) or (k := self._shared(rk)) is None:
            return dict.__getitem__(self, rk)
        return _SHARED[k]

    def get(self, rk, default=None):  # a look-up that never claims the computation
        if dict.__contains__(self, rk):
            return dict.__getitem__(self, rk)
        k = self._shared(rk)
        return _SHARED.get(k, default) if k is not None else default

    def __setitem__(self, rk, value) -> None:
        if (k := self._shared(rk)) is None:
            return dict.__setitem__(self, rk, value)
        store.save(self._disk_key(k), value)
        with _SHARED_LOCK:
            _SHARED[k] = value
            if (ev := _PENDING.pop(k, None)) is not None:
                ev.set()


def results(name: str) -> Results:
    """This session's evaluation cache ``name`` (preset runs' entries shared, see Results)."""
    page = sys._getframe(1).f_globals.get("__file__", "")  # the page that computes them
    return st.session_state.setdefault(name, Results(name, page))
