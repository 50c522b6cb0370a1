"""Several training / pair-generation phases run in order as one resumable job.

A phase is built when its turn comes, from the phases finished before it, and advanced one slice
at a time (100 optimizer steps, or one chunk of ODE solves), so a page can run the whole
sequence between reruns and pause it. Phases given as already finished (e.g. loaded from a
preset) are skipped. Every phase's wall time is kept: the honest compute of what it made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .train import TrainState, train_steps

STEPS_PER_SLICE = 100


@dataclass
class PhaseRunner:
    builds: dict[str, Callable[[dict], object]]  # name -> build(jobs) -> TrainState | pairs job
    jobs: dict = field(default_factory=dict)  # name -> its job (finished, running or preloaded)
    seconds_by_phase: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    status: str = "ready"  # ready | running | done | nan
    message: str = ""

    @property
    def phase(self) -> str | None:
        """The phase to run next (None: all done)."""
        return next((p for p in self.builds if p not in self.jobs or not self.jobs[p].done),
                    None)

    @property
    def done(self) -> bool:
        return self.phase is None or self.status == "nan"

    @property
    def phase_seconds(self) -> dict:
        """Wall time per phase: measured here, or the job's own record (a loaded preset's
        training time, from its checkpoint)."""
        return {p: self.seconds_by_phase.get(p, getattr(j, "seconds", 0.0))
                for p, j in self.jobs.items()}

    @property
    def seconds(self) -> float:
        return sum(self.phase_seconds.values())

    @property
    def history(self) -> list:
        """The loss curve of the latest training phase (for a live chart)."""
        for j in reversed(list(self.jobs.values())):
            if isinstance(j, TrainState) and j.history:
                return j.history
        return []

    def advance(self, k: int = 1) -> PhaseRunner:
        for _ in range(k):
            p = self.phase
            if p is None or self.status == "nan":
                break
            self.status = "running"
            t = time.perf_counter()
            if p not in self.jobs:
                self.jobs[p] = self.builds[p](self.jobs)
            job = self.jobs[p]
            if isinstance(job, TrainState):
                train_steps(job, STEPS_PER_SLICE)
                if job.status == "nan":
                    self.status, self.message = "nan", f"{p}: {job.message}"
            else:
                job.advance()
            self.seconds_by_phase[p] = self.seconds_by_phase.get(p, 0.0) + \
                time.perf_counter() - t
        if self.phase is None:
            self.status = "done"
        return self

    def run_all(self) -> PhaseRunner:
        while not self.done:
            self.advance()
        return self

    def progress(self) -> tuple[float, str]:
        """(fraction done, a line of text) for a progress bar."""
        names, p = list(self.builds), self.phase
        if p is None:
            return 1.0, f"all {len(names)} phases done · {self.seconds:.1f} s"
        i, j = names.index(p), self.jobs.get(p)
        frac = 0.0 if j is None else (j.step / j.cfg.steps if isinstance(j, TrainState)
                                      else j.n_done / max(1, getattr(j, "n_total", len(j.x))))
        return (i + frac) / len(names), (f"phase {i + 1}/{len(names)}: {p} "
                                         f"({100 * frac:.0f} %) · {self.seconds:.1f} s so far")
