"""InstaFlow in 2-D: a conditional teacher, text-conditioned reflow, one-step distillation
(article §4-4.4; Liu et al., InstaFlow, ICLR 2024).

The "text prompt" is a readable condition c: the name of a part of the target (the eight
Gaussians by compass direction, the upper or lower moon, ...). The pipeline (§4.1):

    1. teacher      dx/dt = v_T(x, t | c), integrated for 20-50 steps: triples (x0, x1, c)
                    (the exact conditional VP PF-ODE, or a trained conditional 1-RF)
    2. 2-RF         L = E || (x1 - x0) - v(x_t, t | c) ||^2 on the triples        (§4.2)
    3. student      x1 ≈ x0 + v~(x0 | c) on the 2-RF's own ODE endpoints          (§4.3)

and the paper's control: a student distilled straight from the teacher's triples, same budget.
Coverage (§4.4): conditions drawn rarely among the triples get few pairs; ``fix`` rebalances.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

import torch

from ..config import SEED, JSONConfig
from ..data import EIGHT_GAUSSIAN_NAMES, SAMPLERS
from ..exact import ExactField, vp_pf_ode_drift
from ..models import MLPConfig, TimeMLP
from ..paths import VPPath
from ..runner import PhaseRunner
from ..train import OptimConfig, init_state
from .distill import distill_objective
from .fm import fm_objective, guided
from .reflow import PairGeneration, Pairs, ReflowConfig, huber_c, loss_fn, reflow_state

# The datasets whose parts have names: condition c is the sampler's label.
CONDITIONS = {
    "8gaussians": EIGHT_GAUSSIAN_NAMES,
    "two_mode": ("top", "bottom"),
    "moons": ("upper moon", "lower moon"),
    "rings": ("radius 1", "radius 2", "radius 3"),
    "two_spirals": ("spiral A", "spiral B"),
    "checkerboard": tuple(f"row {c // 2 + 1}, col {2 * (c % 2) + (c // 2) % 2 + 1}"
                          for c in range(8)),
}
TEACHERS = ("exact_vp", "rf")
FIXES = ("none", "reweight", "resample")


def class_samples(target: str, c: int, n: int, seed: int = 0) -> torch.Tensor:
    """n fresh samples of condition c's part of ``target`` (the reference for per-condition
    quality), drawn by rejection from the labelled sampler."""
    g, out, got = torch.Generator().manual_seed(seed), [], 0
    while got < n:
        x, lab = SAMPLERS[target](4 * n, g)
        out.append(x[lab == c])
        got += len(out[-1])
    return torch.cat(out)[:n]


class ConditionalExact:
    """The exact conditional field v(x, t | c) of an empirical target split by label: one
    flowviz.exact.ExactField per condition, on that condition's points. On the VP path it
    returns the diffusion PF-ODE drift (the "pretrained diffusion model" of §4.1). ``label``
    None, or the token K (classifier-free guidance's "no condition"), gives the field of all
    points."""

    def __init__(self, data: torch.Tensor, labels: torch.Tensor, n_classes: int,
                 path=VPPath(), h: float = 0.0):
        self.path, self.n_classes = path, n_classes
        self.full = ExactField(data, path, h=h)
        self.fields = [ExactField(data[labels == c], path, h=h) for c in range(n_classes)]

    def _drift(self, f: ExactField, x, t):
        return vp_pf_ode_drift(f, x, t).to(x.dtype) if isinstance(self.path, VPPath) else f(x, t)

    def __call__(self, x: torch.Tensor, t, label: torch.Tensor | None = None) -> torch.Tensor:
        if label is None:
            return self._drift(self.full, x, t)
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        out = torch.empty_like(x)
        for c in label.unique().tolist():
            m = label == c
            f = self.fields[c] if c < self.n_classes else self.full
            out[m] = self._drift(f, x[m], t[m] if t.dim() else t)
        return out


def conditional_fm_objective(target: str, batch: int, n_classes: int, p_uncond: float = 0.1):
    """FM with labels (the trained conditional 1-RF teacher): fm_objective on the target's
    parts as labels, each replaced by the "no condition" token with probability ``p_uncond`` so
    one network also learns v(x, t | ∅) for guidance (Ho & Salimans' classifier-free
    guidance)."""
    return fm_objective(SAMPLERS["gaussian"], SAMPLERS[target], batch, n_classes=n_classes,
                        p_uncond=p_uncond)


def condition_probs(n_classes: int, rare: int = -1, share: float = 0.0) -> torch.Tensor:
    """How often each condition appears among the triples: uniform, except condition ``rare``
    (-1: none) with probability ``share`` and the others sharing the rest equally."""
    p = torch.full((n_classes,), 1.0 / n_classes, dtype=torch.float64)
    if rare >= 0:
        p[:] = (1 - share) / (n_classes - 1)
        p[rare] = share
    return p


@dataclass(frozen=True)
class InstaFlowRun(JSONConfig):
    """The whole pipeline as one frozen, JSON-serialisable config (page, CLI and benchmark)."""

    target: str = "8gaussians"  # a CONDITIONS name
    n_data: int = 2000  # points behind the exact teacher (all conditions)
    h: float = 0.05  # their kernel width (flowviz.exact)
    seed: int = 0
    teacher: str = "exact_vp"  # a TEACHERS name
    teacher_solver: str = "euler"
    teacher_steps: int = 25  # the article's 20-50 steps
    guidance: float = 1.0  # classifier-free guidance scale w of the teacher
    p_uncond: float = 0.1  # label dropout of the trained teacher
    teacher_batch: int = 1024
    teacher_optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(steps=1000, lr=1e-2, warmup=30))
    n_triples: int = 8000
    rare: int = -1  # the rarely prompted condition (-1: none)
    rare_share: float = 0.01  # its share of the triples
    fix: str = "none"  # a FIXES name: rebalance the 2-RF's and students' batches, or the prompts
    reflow: ReflowConfig = field(default_factory=lambda: ReflowConfig(
        solver="dopri5", tol=1e-4, chunk=2000, optim=OptimConfig(steps=1500, lr=3e-3)))
    student_steps: int = 1000
    student_lr: float = 3e-3
    student_loss: str = "squared"  # a flowviz.methods.reflow.LOSSES name (LPIPS on images)
    model: MLPConfig = field(default_factory=lambda: MLPConfig(hidden=128))
    BOUNDS: ClassVar[dict] = {"n_data": (2, 50_000), "h": (0.0, 1.0), "seed": SEED,
                              "teacher_steps": (1, 1000), "guidance": (0.0, 20.0),
                              "p_uncond": (0.0, 1.0), "teacher_batch": (1, 8192),
                              "n_triples": (1, 100_000), "rare": (-1, 100),
                              "rare_share": (0.0, 1.0), "student_steps": (1, 100_000),
                              "student_lr": (1e-8, 1.0)}  # what from_dict accepts

    def __post_init__(self):
        if self.target not in CONDITIONS:
            raise ValueError(f"{self.target!r} has no named parts; choose from {list(CONDITIONS)}")
        if self.teacher not in TEACHERS or self.fix not in FIXES:
            raise ValueError(f"teacher in {TEACHERS}, fix in {FIXES}")
        k = len(CONDITIONS[self.target])
        if self.rare >= k:
            raise ValueError(f"rare is {self.rare}, but {self.target} has conditions 0 to "
                             f"{k - 1} (-1: none)")
        if self.model.n_classes != k:
            object.__setattr__(self, "model", dataclasses.replace(self.model, n_classes=k))

    @property
    def n_classes(self) -> int:
        return len(CONDITIONS[self.target])

    def probs(self) -> torch.Tensor:
        """The prompts' condition frequencies among the triples ("resample": uniform)."""
        if self.fix == "resample":
            return condition_probs(self.n_classes)
        return condition_probs(self.n_classes, self.rare, self.rare_share)


PHASES = ("teacher", "triples", "2-RF", "2-RF endpoints", "student from 2-RF",
          "student from teacher")


class InstaFlowPipeline(PhaseRunner):
    """The pipeline as one resumable flowviz.runner.PhaseRunner: teacher (trained only for
    "rf"), triples, 2-RF, 2-RF endpoints, then the two students; ``advance()`` runs one slice
    of the current phase, and every phase's wall time is kept (honest compute)."""

    def __init__(self, run: InstaFlowRun, device: torch.device):
        names = [p for p in PHASES if p != "teacher" or run.teacher == "rf"]
        super().__init__({p: partial(self._start, p) for p in names})
        self.run, self.device = run, device
        g = torch.Generator().manual_seed(run.seed)
        self.x0 = torch.randn(run.n_triples, 2, generator=g).to(device)
        self.cond = torch.multinomial(run.probs(), run.n_triples, replacement=True,
                                      generator=g).to(device)
        counts = torch.bincount(self.cond.cpu(), minlength=run.n_classes).double()
        # "reweight": batches drawn with weight 1 / frequency, so every condition is equally
        # likely in a batch (its few triples are repeated); None: uniform over triples
        self.weights = (1 / counts.clamp_min(1))[self.cond.cpu()] if run.fix == "reweight" \
            else None
        if run.teacher == "exact_vp":
            x, lab = SAMPLERS[run.target](run.n_data, torch.Generator().manual_seed(run.seed + 1))
            self.exact = ConditionalExact(x.to(device), lab.to(device), run.n_classes, VPPath(),
                                          run.h)

    # --- the fields of each stage ---------------------------------------------------------
    @property
    def teacher(self):
        """v_T(x, t | c) with guidance; t runs to t_end (VP: 1 - 1e-3)."""
        base = self.exact if self.run.teacher == "exact_vp" else self.model("teacher")
        return guided(base, self.run.guidance)

    @property
    def t_end(self) -> float:
        return VPPath().t_max if self.run.teacher == "exact_vp" else 1.0

    def model(self, phase: str) -> torch.nn.Module:
        return self.jobs[phase].sampler_model.eval()

    def pairs(self, phase: str) -> Pairs:
        return self.jobs[phase].result()

    def _start(self, p: str, jobs: dict):
        """Build phase p from the finished ones in ``jobs`` (the pipeline adopts that dict, so
        flowviz.checkpoint can rebuild the phases one by one into its own)."""
        self.jobs = jobs
        r, dev, pcfg = self.run, self.device, self.run.reflow
        if p == "teacher":  # conditional FM with label dropout (for guidance)
            torch.manual_seed(r.seed)
            return init_state(TimeMLP(r.model).to(dev), conditional_fm_objective(
                r.target, r.teacher_batch, r.n_classes, r.p_uncond),
                dataclasses.replace(r.teacher_optim, seed=r.seed))
        if p == "triples":  # the teacher's 20-50 step solves (§4.1 step 1)
            return PairGeneration(self.teacher, self.x0, r.teacher_solver, r.teacher_steps,
                                  chunk=pcfg.chunk, t1=self.t_end, cond={"label": self.cond})
        if p == "2-RF":  # text-conditioned reflow (§4.2), initialised from the teacher if any
            prev = jobs["teacher"].sampler_model if "teacher" in jobs else \
                TimeMLP(r.model).to(dev)
            cfg = dataclasses.replace(pcfg, optim=dataclasses.replace(pcfg.optim, seed=r.seed))
            return reflow_state(prev, self.pairs("triples"), cfg, weights=self.weights)
        if p == "2-RF endpoints":  # the 2-RF's own map, on the same (x0, c)
            return PairGeneration(self.model("2-RF"), self.x0, pcfg.solver, pcfg.steps,
                                  pcfg.tol, pcfg.chunk, cond={"label": self.cond})
        # students (§4.3): same steps, batch and init rule; only their pairs differ
        src = "2-RF endpoints" if p == "student from 2-RF" else "triples"
        init = jobs["2-RF"] if p == "student from 2-RF" else jobs.get("teacher")
        net = copy.deepcopy(init.sampler_model).requires_grad_(True).train() if init else \
            TimeMLP(r.model).to(dev)
        loss = loss_fn(r.student_loss, pcfg.c or huber_c(2))
        opt = OptimConfig(steps=r.student_steps, lr=r.student_lr, warmup=30, seed=r.seed)
        return init_state(net, distill_objective(self.pairs(src), pcfg.batch, loss,
                                                 self.weights), opt)

    # --- samplers of each stage (x0 (N, 2), label (N,)) -------------------------------------
    def sample(self, who: str, x0: torch.Tensor, label: torch.Tensor, steps: int = 1):
        """Samples of 'teacher' (its solver, ``steps`` steps), '2-RF' (Euler, ``steps``) or a
        student (one call)."""
        from ..solvers import solve
        from .distill import one_step

        if who == "teacher":
            f = partial(self.teacher, label=label)
            return solve(f, x0, self.run.teacher_solver, steps, t1=self.t_end).x
        if who == "2-RF":
            return solve(partial(self.model("2-RF"), label=label), x0, "euler", steps).x
        with torch.no_grad():
            return one_step(self.model(who), x0, label=label)


# --- what the page and the benchmark measure ----------------------------------------------------

def per_condition_quality(pipe: InstaFlowPipeline, who: str, steps: int = 1, n: int = 1000,
                          seed: int = 0, ref: str = "data") -> list[float]:
    """Energy distance of ``who``'s samples for each condition c (n from the same noise) to
    fresh data of c (``ref`` = "data") or to the teacher's own samples for c ("teacher": how
    well the stage reproduces what it learned from)."""
    from ..metrics import energy_distance

    out = []
    for c in range(pipe.run.n_classes):
        g = torch.Generator().manual_seed(seed + 1000 + c)
        x0, lab = torch.randn(n, 2, generator=g).to(pipe.device), torch.full((n,), c)
        lab = lab.to(pipe.device)
        x = pipe.sample(who, x0, lab, steps)
        if ref == "data":
            y = class_samples(pipe.run.target, c, n, seed + 2000 + c).to(x.device)
        else:
            z = torch.randn(n, 2, generator=g).to(pipe.device)
            y = pipe.sample("teacher", z, lab, pipe.run.teacher_steps)
        out.append(energy_distance(x.float().cpu(), y.float().cpu()))
    return out


def latency(pipe: InstaFlowPipeline, who: str, steps: int = 1, n: int = 10_000,
            reps: int = 3) -> float:
    """Best-of-``reps`` wall time (s) for n samples of ``who`` (mixed conditions)."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(n, 2, generator=g).to(pipe.device)
    lab = torch.randint(0, pipe.run.n_classes, (n,), generator=g).to(pipe.device)
    best = float("inf")
    for _ in range(reps):
        if pipe.device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        pipe.sample(who, x0, lab, steps)
        if pipe.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def coupling_report(pipe: InstaFlowPipeline, n: int = 300) -> dict:
    """How curved and how costly each coupling the students distil is: the teacher's triples
    and the 2-RF's endpoints, on the same (x0, c). Straightness (0: straight paths) of the ODE
    paths that made them, transport cost E||x1 - x0||^2, crossings, the NFE each pair cost,
    how far its x1 lies from the teacher's for the same (x0, c) ("map_change": reflow can
    change the coupling only where the teacher's pair lines cross at the same time), and the
    final loss of the student distilled from it."""
    from ..analysis import coupling_metrics
    from ..metrics import straightness
    from ..solvers import solve

    x0, lab = pipe.x0[:n], pipe.cond[:n]
    run, out = pipe.run, {}
    paths = {"triples": (partial(pipe.teacher, label=lab), run.teacher_solver,
                         run.teacher_steps, pipe.t_end),
             "2-RF endpoints": (partial(pipe.model("2-RF"), label=lab), "rk4", 25, 1.0)}
    students = {"triples": "student from teacher", "2-RF endpoints": "student from 2-RF"}
    for src, (f, method, steps, t1) in paths.items():
        s = solve(f, x0, method, steps, t1=t1, return_traj=True)
        pairs = pipe.pairs(src)
        hist = pipe.jobs[students[src]].history
        out[src] = {"straightness": straightness(s.traj, s.ts),
                    "map_change": float((pairs.x1[:n] - pipe.pairs("triples").x1[:n])
                                        .norm(dim=1).mean()),
                    **coupling_metrics(pairs.x0[:n].cpu(), pairs.x1[:n].cpu(), n),
                    "student_loss": hist[-1]["loss"] if hist else float("nan"),
                    "nfe_per_pair": sum(pipe.jobs[src].chunk_nfe) / len(pipe.jobs[src].chunk_nfe)}
    return out


# --- what the InstaFlow page shows -------------------------------------------------------------

def teacher_paths(pipe: InstaFlowPipeline, n: int = 120) -> dict:
    """condition name -> the teacher's ODE paths (T, n, 2) from the same noise for every
    condition (the exact teacher needs no training; a trained one its finished phase)."""
    from ..solvers import solve

    r = pipe.run
    x0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(r.seed + 7)).to(pipe.device)
    out = {}
    for c, name in enumerate(CONDITIONS[r.target]):
        lab = torch.full((n,), c, device=pipe.device)
        out[name] = solve(partial(pipe.teacher, label=lab), x0, r.teacher_solver,
                          r.teacher_steps, t1=pipe.t_end, return_traj=True).traj.cpu()
    return out


def condition_noise_floor(target: str, n: int = 1000, seed: int = 0, reps: int = 3) -> float:
    """The sampling noise of a per-condition energy distance at n points: the RMS distance
    between independent n-point sets of one condition's data, over conditions and ``reps``."""
    from ..metrics import energy_distance

    eds = torch.tensor([energy_distance(class_samples(target, c, n, seed + 10 * i + c),
                                        class_samples(target, c, n, seed + 10 * i + c + 5000))
                        for c in range(len(CONDITIONS[target])) for i in range(reps)])
    return float(eds.pow(2).mean().sqrt())


def one_step_report(pipe: InstaFlowPipeline, n: int = 1000, seed: int = 0) -> dict:
    """The lesson's numbers: per-condition energy distance to the data of the teacher (its own
    steps), one Euler step of the 2-RF and the one-step student distilled from the 2-RF; the
    triples each condition got, and the distances' sampling noise."""
    r = pipe.run
    steps = {"teacher": r.teacher_steps, "2-RF": 1, "student from 2-RF": 1}
    return {**{who: per_condition_quality(pipe, who, m, n, seed) for who, m in steps.items()},
            "triples": torch.bincount(pipe.cond.cpu(), minlength=r.n_classes).tolist(),
            "floor": condition_noise_floor(r.target, n, seed)}


def latency_report(pipe: InstaFlowPipeline, quality: dict, n: int = 1000,
                   seed: int = 0) -> list[tuple[str, float, float]]:
    """(sampler, ms per 10 000 samples, mean energy distance over conditions) for the teacher,
    the 2-RF at 1, 2, 4, 8 Euler steps and the student; ``quality``: one_step_report's
    distances (reused where they were measured)."""
    r = pipe.run
    teacher = "exact VP PF-ODE" if r.teacher == "exact_vp" else "1-RF"  # names its colour
    rows = []
    for label, who, m in [(f"teacher ({teacher}) · {r.teacher_steps} steps", "teacher",
                           r.teacher_steps),
                          *((f"2-RF · {m} step{'s' * (m > 1)}", "2-RF", m) for m in (1, 2, 4, 8)),
                          ("2-RF + distill · 1 step", "student from 2-RF", 1)]:
        ed = quality[who] if m == (r.teacher_steps if who == "teacher" else 1) else \
            per_condition_quality(pipe, who, m, n, seed)
        rows.append((label, 1000 * latency(pipe, who, m), sum(ed) / len(ed)))
    return rows


def students_report(pipe: InstaFlowPipeline, n: int = 1000, seed: int = 0) -> dict:
    """The paper's control: the student distilled straight from the teacher's triples next to
    the one from the 2-RF (distance to the data and to the teacher's samples per condition),
    and how curved and costly each coupling they were distilled from is."""
    students = ("student from 2-RF", "student from teacher")
    return {"data": {s: per_condition_quality(pipe, s, 1, n, seed) for s in students},
            "teacher": {s: per_condition_quality(pipe, s, 1, n, seed, ref="teacher")
                        for s in students},
            "coupling": coupling_report(pipe)}
