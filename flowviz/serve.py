"""One server for a classroom: a cap on concurrent trainings with a first-come queue, and a
bound on the runs each session keeps. Pure Python (no Streamlit): views.common uses it.

Settings come from the environment of the server process:
    FLOWVIZ_MAX_TRAININGS  trainings that run at once, server-wide (default 2)
    FLOWVIZ_TORCH_THREADS  torch threads per training (default 1): trainings x threads <= cores
    FLOWVIZ_MAX_RUNS       trained runs one session keeps; the oldest go first (default 12)
"""

from __future__ import annotations

import os
import threading
import time


def env_int(name: str, default: int, lo: int = 1) -> int:
    try:
        return max(lo, int(os.environ.get(name, default)))
    except ValueError:
        return default


MAX_TRAININGS = env_int("FLOWVIZ_MAX_TRAININGS", 2)
TORCH_THREADS = env_int("FLOWVIZ_TORCH_THREADS", 1)
MAX_RUNS = env_int("FLOWVIZ_MAX_RUNS", 12)


class TrainingSlots:
    """At most ``limit`` trainings hold a slot; the others wait in arrival order. A training
    asks again before every chunk (``request``); one that stops asking for ``ttl`` seconds (its
    session closed, or it was paused without ``release``) loses its slot or its place."""

    def __init__(self, limit: int, ttl: float = 30.0, clock=time.monotonic):
        self.limit, self.ttl, self.clock = limit, ttl, clock
        self._lock = threading.Lock()
        self._active: dict[str, float] = {}  # holder -> last request
        self._queue: dict[str, float] = {}  # waiter -> last request, in arrival order

    def request(self, who: str) -> int:
        """0 when ``who`` may train now, else its place in the queue (1 = next)."""
        with self._lock:
            now = self.clock()
            for d in (self._active, self._queue):
                for k in [k for k, seen in d.items() if now - seen > self.ttl]:
                    del d[k]
            if who in self._active:
                self._active[who] = now
                return 0
            self._queue[who] = now  # a known waiter keeps its place
            while len(self._active) < self.limit and self._queue:
                first = next(iter(self._queue))
                self._active[first] = now
                del self._queue[first]
            return 0 if who in self._active else list(self._queue).index(who) + 1

    def release(self, who: str) -> None:
        with self._lock:
            self._active.pop(who, None)
            self._queue.pop(who, None)

    def counts(self) -> tuple[int, int]:
        """(trainings running, trainings waiting)."""
        with self._lock:
            return len(self._active), len(self._queue)


def evict_oldest(runs: dict, limit: int, keep=()) -> list:
    """Drop the oldest entries of the insertion-ordered ``runs`` until at most ``limit`` remain,
    never those in ``keep`` (the run on screen, runs training now). Returns the dropped keys."""
    dropped = []
    for k in list(runs):
        if len(runs) <= limit:
            break
        if k not in keep:
            del runs[k]
            dropped.append(k)
    return dropped
