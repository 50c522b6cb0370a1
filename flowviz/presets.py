"""Classroom presets: small checkpoints that the project trained itself, so pages open trained.

A preset is one JSON file in ``assets/presets/`` — the run's kind and full config, the page it
serves and the quality it claims — and the checkpoint ``<name>.pt`` next to it, written by
``python -m flowviz presets <name>`` from that JSON. Adding one is adding one JSON file and
running that command. A page looks its run up with ``find`` (exact config equality, phase by
phase) and loads it with ``load``; a run with any other setting is trained live.
FLOWVIZ_PRESETS=0 in the server's environment turns presets off.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

from . import checkpoint, metrics, solvers, store
from .config import ConfigError
from .experiment import (
    FMRun,
    ReflowRun,
    ShortcutRun,
    data_samplers,
    phase_ids,
    phases,
    same_time,
)
from .methods import meanflow, shortcut
from .methods.instaflow import InstaFlowPipeline, InstaFlowRun, per_condition_quality
from .train import TrainState, train_steps

DIR = Path(__file__).resolve().parents[1] / "assets" / "presets"


def enabled() -> bool:
    """Pages open on presets unless the server runs with FLOWVIZ_PRESETS=0 (every page then
    starts untrained, as before presets existed)."""
    return os.environ.get("FLOWVIZ_PRESETS", "1") != "0"


N_EVAL = 2000  # samples per side of the energy distance that a preset's quality is checked by


@dataclass(frozen=True)
class Preset:
    name: str
    kind: str  # a flowviz.checkpoint.KINDS name
    page: str  # the views/ page that opens on it
    about: str
    run: object  # the frozen run config
    quality: tuple  # ((phase, sampling steps, "<=" or ">=", energy distance), ...): the claims
    partner: str = ""  # trained for the same time as this preset (experiment.same_time)...
    cost_ms: tuple = ()  # ...by these step costs (partner's, this run's), timed when made

    @property
    def path(self) -> Path:
        return DIR / f"{self.name}.pt"

    @property
    def command(self) -> str:
        return f"python -m flowviz presets {self.name}"


def spec(path: Path) -> Preset:
    """The preset of one JSON file; anything missing or invalid raises ConfigError."""
    try:
        d = json.loads(Path(path).read_text())
        run = checkpoint.KINDS[d["kind"]].from_dict(d["config"])
        q = tuple((p, int(n), op, float(b)) for p, n, op, b in d.get("quality", []))
        page, partner = d["page"], str(d.get("partner", ""))
        cost = tuple(float(x) for x in d.get("cost_ms", ()))
    except (KeyError, TypeError, ValueError) as e:  # ConfigError and JSON errors included
        raise ConfigError(f"preset {Path(path).name}: {type(e).__name__}: {e}") from None
    if bad := [c for c in q if c[2] not in ("<=", ">=") or c[0] not in phase_ids(run)]:
        raise ConfigError(f"preset {path.name}: bad quality claim {bad[0]}")
    return Preset(Path(path).stem, d["kind"], page, d.get("about", ""), run, q, partner, cost)


def weights_digest(name: str) -> str:
    """A digest of preset ``name``'s checkpoint file: it keys the evaluations of its weights
    (flowviz.store), so a retrained preset is evaluated afresh."""
    return store.file_digest(str(specs()[name].path))


@cache
def specs(directory: Path = DIR) -> dict[str, Preset]:
    return {p.stem: spec(p) for p in sorted(Path(directory).glob("*.json"))}


@cache
def _index(directory: Path = DIR) -> dict:
    out = {}
    for p in specs(directory).values():
        for phase, ident in phase_ids(p.run).items():
            out.setdefault(ident, (p, phase))
    return out


def partner_of(name: str, directory: Path = DIR) -> Preset | None:
    """The preset trained for the same time as preset ``name`` (its page's comparison run)."""
    return next((p for p in specs(directory).values() if p.partner == name and p.path.exists()),
                None)


def make_partner(name: str, device="cpu", directory: Path = DIR) -> Preset:
    """Write ``<name>-same-time.json``: experiment.same_time's partner of preset ``name``, its
    steps set by the step costs timed now (recorded in the file). Train it with `presets`."""
    main = specs(directory)[name]
    run, cost = same_time(main.run, n=30, reps=5, device=device)
    path = Path(directory) / f"{name}-same-time.json"
    kind = {FMRun: "fm", ShortcutRun: "shortcut"}[type(run)]
    claims = json.loads(path.read_text()).get("quality", []) if path.exists() else []
    path.write_text(json.dumps({
        "kind": kind, "page": main.page, "partner": name, "cost_ms": list(cost),
        "about": f"{main.page} page, section 'same time': {type(run).__name__} beside the "
                 f"{name} preset, {run.optim.steps} steps = {main.run.optim.steps} x "
                 f"{cost[0]:.2f} ms / {cost[1]:.2f} ms per step (timed by `python -m flowviz "
                 f"presets --pair {name}`).",
        "config": json.loads(run.to_json()), "quality": claims}, indent=1) + "\n")
    specs.cache_clear()
    _index.cache_clear()
    return spec(path)


def find(ident, directory: Path = DIR) -> tuple[Preset, str] | None:
    """(preset, phase) whose config at that phase equals ``ident`` (a run config, or for
    ReFlow's later phases what experiment.phase_ids gives), if its checkpoint exists."""
    hit = _index(directory).get(ident)
    return hit if hit is not None and hit[0].path.exists() else None


def load(preset: Preset, device="cpu") -> dict:
    """The preset's finished phases {name: state}, checked against its recorded config."""
    run, done = checkpoint.load_all(preset.path, device, preset.kind)
    if run != preset.run:
        raise checkpoint.CheckpointError(f"{preset.path.name} was trained from another config "
                                         f"than {preset.name}.json: run `{preset.command}`.")
    for s in done.values():
        s.meta["preset"] = preset.name
        if preset.cost_ms:
            s.meta["cost"] = preset.cost_ms
    return done


def train(preset: Preset, device="cpu", chunk: int = 500, log=print) -> dict:
    """Train every phase of the preset's run from scratch, then save its checkpoint (sampler
    weights only, no optimizer: a finished run that pages sample from)."""
    done = {}
    for name, build in phases(preset.run, device).items():
        s, t0 = build(done), time.perf_counter()
        while not s.done:
            train_steps(s, chunk) if isinstance(s, TrainState) else s.advance(4)
        if getattr(s, "status", "") == "nan":
            raise RuntimeError(f"{preset.name}/{name}: {s.message}")
        log(f"{preset.name}/{name}: {time.perf_counter() - t0:.1f} s")
        done[name] = s
    checkpoint.save(preset.path, done, preset.run, resumable=False)
    return done


def generate(preset: Preset, state, x0: torch.Tensor, steps: int) -> torch.Tensor:
    """Samples of a trained phase in ``steps`` network calls, with its own sampler: Euler for
    flow matching and ReFlow, the M-step shortcut sampler, the MeanFlow jumps."""
    model = state.sampler_model.eval()
    with torch.no_grad():
        if preset.kind == "shortcut":
            return shortcut.sample(model, x0, steps).x
        if preset.kind == "meanflow":
            return meanflow.sample(model, x0, steps).x
        return solvers.solve(model, x0, "euler", steps).x


def quality(preset: Preset, done: dict, seed: int = 12345) -> list[dict]:
    """Each claim of the preset, measured: energy distance of N_EVAL generated samples to
    N_EVAL fresh samples of the training distribution (new noise and data draws); ``ok`` says
    whether the claim holds."""
    if isinstance(preset.run, InstaFlowRun):  # mean over conditions of each part's distance
        pipe = InstaFlowPipeline(preset.run, torch.device("cpu"))
        pipe.jobs = done

        def measure(p, n):
            q = per_condition_quality(pipe, p, n, N_EVAL // 2, seed)
            return sum(q) / len(q)
    else:
        run = preset.run.base if isinstance(preset.run, ReflowRun) else preset.run
        sample_x0, sample_x1 = data_samplers(run)
        g = torch.Generator().manual_seed(seed)
        x0, ref = sample_x0(N_EVAL, g)[0], sample_x1(N_EVAL, g)[0]

        def measure(p, n):
            return metrics.energy_distance(generate(preset, done[p], x0, n), ref)
    out = []
    for p, n, op, b in preset.quality:
        ed = measure(p, n)
        out.append({"phase": p, "steps": n, "ed": ed, "claim": f"{op} {b:g}",
                    "ok": ed <= b if op == "<=" else ed >= b})
    return out
