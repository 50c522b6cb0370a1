"""The ReFlow page's pipeline (article §3, eq. 6): train the 1-RF, solve its ODE for new pairs,
train the 2-RF on them (and a 3-RF on the 2-RF's pairs). Each phase starts on its own button,
pauses and resumes; a phase built on one that was retrained since is stale and says so. Also
what the page measures on each round, cached per (run, step)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import streamlit as st
import torch

import flowviz as fv
from flowviz.analysis import coupling_metrics, path_metrics, quality_vs_nfe
from flowviz.experiment import FAST_1RF
from flowviz.methods.reflow import ReflowConfig, pair_phase, reflow_state
from flowviz.models import MLPConfig
from flowviz.solvers import ADAPTIVE, METHODS
from views.cache import data_points, exact_field, source_points
from views.results import results
from views.state import Settings, device, run_key, uploaded_points
from views.training import is_stale, live_training

ROUND = {1: "1-RF", 2: "2-RF", 3: "3-RF"}
COUPLING = {"independent": "independent", "ot": "minibatch OT"}
T_LABELS = {"uniform": "uniform", "u_shaped": "U-shaped", "logit_normal": "logit-normal"}
LOSS_LABELS = {"squared": "squared error", "pseudo_huber": "pseudo-Huber"}
N_EVAL, N_PATHS, N_CROSS = 2000, 200, 300
# The 2-RF's improved-training choices (Lee et al. 2024) are set under "Go deeper"; a widget's
# state is dropped while it is not drawn, so their values are kept here in between.
CHOICES = {"rf_tdist": "u_shaped", "rf_a": 4.0, "rf_lnstd": 1.0, "rf_loss": "squared",
           "rf_c": 0.0, "rf_preal": 0.0, "rf_init": "previous"}


def choices() -> dict:
    """The improved-training choices: the widgets' values when drawn, else the kept ones."""
    kept = st.session_state.setdefault("rf_kept", dict(CHOICES))
    kept.update({k: st.session_state[k] for k in CHOICES if k in st.session_state})
    return kept


@dataclass
class Reflow:
    """The page's data and settings, and the rounds trained on them."""

    cfg: Settings
    run1: fv.FMRun | None = None  # the 1-RF (independent pairs)
    pairs_cfg: ReflowConfig | None = None  # the pair phase's fields of a round
    round_cfg: ReflowConfig | None = None  # the 2-RF's (and 3-RF's) training
    rounds: dict = dataclasses.field(default_factory=dict)  # k -> (key, state or None)
    statuses: dict = dataclasses.field(default_factory=dict)  # phase -> its status line

    def __post_init__(self):
        cfg = self.cfg
        self.dev = device(cfg)
        self.x1 = data_points(cfg.target, cfg.n_data, cfg.seed, cfg.upload)
        self.x0 = source_points(cfg.source, len(self.x1), cfg.seed + 1, cfg.upload)
        self.data_key = (cfg.source, cfg.target, cfg.n_data, cfg.seed, cfg.h, cfg.upload,
                         str(self.dev))
        n = min(N_CROSS, len(self.x0))
        perm = torch.randperm(len(self.x1), generator=torch.Generator().manual_seed(cfg.seed))
        self.independent = (self.x0[:n], self.x1[perm[:n]])

    def fm_run(self, coupling: str = "independent") -> fv.FMRun:
        return dataclasses.replace(self.run1, coupling=coupling)

    def rf1_key(self, coupling: str = "independent") -> str:
        return run_key("rf1", self.fm_run(coupling), self.cfg.upload, str(self.dev))

    def rf1_meta(self, coupling: str = "independent") -> dict:
        r = self.run1
        return {"label": f"1-RF · {COUPLING[coupling]} · w{r.model.hidden} · "
                         f"{r.optim.steps} steps", "data": self.data_key, "round": 1,
                "coupling": coupling}

    def trained(self) -> dict:
        """round -> (key, state) of the rounds that trained a little and are not stale."""
        return {k: (key, s) for k, (key, s) in self.rounds.items()
                if s is not None and s.step > 0 and not is_stale(s)}

    def training_coupling(self, state, n: int = N_CROSS):
        """The pairs a round was trained on: independent or OT samples (1-RF), else its pairs."""
        pairs = state.meta.get("pairs")
        if pairs is not None:
            return pairs.x0[:n].cpu(), pairs.x1[:n].cpu()
        if state.meta.get("coupling") == "ot":
            return fv.data.minibatch_ot(*self.independent)
        return self.independent

    def evaluate(self, key: str, state) -> dict:
        """Quality vs NFE (Euler), path metrics and training-pair metrics of a run."""
        res = results("rf_results")
        rk = (key, state.step)
        if rk not in res:
            cfg, model = self.cfg, state.sampler_model.eval()
            x0e = source_points(cfg.source, N_EVAL, cfg.seed + 2, cfg.upload).to(self.dev)
            ref = exact_field(cfg).sample_target(N_EVAL, torch.Generator().manual_seed(99)) \
                if cfg.source == "gaussian" else \
                data_points(cfg.target, N_EVAL, cfg.seed + 3, cfg.upload)
            with torch.no_grad():
                paths = path_metrics(model, self.x0[:N_PATHS].to(self.dev), steps=50)
            res[rk] = {"nfe": quality_vs_nfe(model, x0e, ref.to(self.dev)),
                       "paths": {k: (v.cpu() if torch.is_tensor(v) else v)
                                 for k, v in paths.items()},
                       "train": coupling_metrics(*self.training_coupling(state), N_CROSS)}
        return res[rk]


# --- the controls of each phase (training defaults: the shipped preset's settings) -----------


def settings_1rf(cfg: Settings) -> fv.FMRun:
    p = FAST_1RF
    with st.popover("Settings", icon=":material/tune:"):
        steps = st.select_slider("Steps", [100, 300, 500, 700, 1000, 2000, 3000, 5000],
                                 p.optim.steps, key="rf_steps1", bind="query-params")
        hidden = st.select_slider("Width", [64, 128, 256], p.model.hidden, key="rf_hidden")
        batch = st.select_slider("Batch", [128, 256, 512, 1024], p.batch, key="rf_batch1")
        lr = st.select_slider("Learning rate", [1e-3, 3e-3, 5e-3, 1e-2, 2e-2], p.optim.lr,
                              key="rf_lr1")
    return fv.FMRun(source=cfg.source, target=cfg.target, n_data=cfg.n_data,
                    data_seed=cfg.seed, h=cfg.h, batch=batch, model=MLPConfig(hidden=hidden),
                    optim=dataclasses.replace(p.optim, steps=steps, lr=lr, seed=cfg.seed))


def settings_pairs(n_real: int) -> ReflowConfig:
    with st.popover("Settings", icon=":material/tune:"):
        solver = st.selectbox("Solver", list(METHODS), index=METHODS.index("dopri5"),
                              key="rf_solver", help="Adaptive (dopri5): the pairs should be the "
                              "flow's own map, not a solver's approximation of it.")
        n_pairs = st.select_slider("Pairs", [1000, 2000, 5000, 10_000, 20_000], 10_000,
                                   key="rf_pairs", help="How many (x0, x1') pairs the next "
                                   "round trains on.")
        tol, steps = 1e-4, 64
        if solver in ADAPTIVE:
            tol = st.select_slider("Tolerance", [1e-3, 1e-4, 1e-5, 1e-6], 1e-4, key="rf_tol",
                                   format_func=lambda v: f"{v:.0e}")
        else:
            steps = st.select_slider("Solver steps", [1, 2, 4, 8, 16, 32, 64, 128], 32,
                                     key="rf_solver_steps")
        st.caption("The data points are also solved backward (data → noise): the real pairs "
                   "of the mixing choice p under Go deeper.")
    return ReflowConfig(n_pairs=n_pairs, solver=solver, steps=steps, tol=tol, chunk=1000,
                        n_real=n_real)


def settings_round(pairs_cfg: ReflowConfig, batch: int, seed: int) -> ReflowConfig:
    with st.popover("Settings", icon=":material/tune:"):
        steps = st.select_slider("2-RF steps", [100, 300, 500, 1000, 2000, 3000], 2000,
                                 key="rf_steps2")
        lr = st.select_slider("2-RF learning rate", [3e-4, 1e-3, 3e-3, 1e-2], 3e-3,
                              key="rf_lr2")
        st.caption("Timesteps, loss, real-data mixing and initialisation: under Go deeper.")
    c = choices()
    return dataclasses.replace(
        pairs_cfg, t_dist=c["rf_tdist"], a=c["rf_a"], ln_std=c["rf_lnstd"], loss=c["rf_loss"],
        c=c["rf_c"], p_real=c["rf_preal"], init=c["rf_init"], batch=batch,
        optim=dataclasses.replace(pairs_cfg.optim, steps=steps, lr=lr, seed=seed))


# --- the phases -------------------------------------------------------------------------------


def status(slot, title: str, state, waiting: str = "", made_from: str = "") -> str:
    """One line per phase: not started / waiting / running / paused / done / stale."""
    if state is None:
        s = waiting or "not started"
    elif is_stale(state):
        s = f"**stale**: built on an earlier {made_from}; " + \
            ("build it again" if not waiting else "build it again once that one is done")
    elif state.status == "nan":
        s = "stopped (NaN)"
    elif state.done:
        s = f"**done** in {state.seconds:.1f} s"
    else:
        key = next((k for k, v in st.session_state.get("runs", {}).items() if v is state), "")
        s = "running…" if st.session_state.get(f"running:{key}") else "paused"
    slot.markdown(f"**{title}** · {s}")
    return s


def pair_progress(p):
    back = f" + {len(p.backward.x)} data points inverted" if p.backward is not None else ""
    return (p.n_done / max(1, p.n_total), f"{p.n_done} / {p.n_total} rows solved "
            f"({len(p.forward.x)} pairs{back}) · {p.nfe} NFE · {p.seconds:.1f} s")


def phase_1rf(page: Reflow) -> tuple[str, object]:
    slot = st.empty()
    key = page.rf1_key()
    state = live_training(key, lambda: fv.build_fm(page.run1, page.dev, uploaded_points()),
                          meta=page.rf1_meta(), start="Train 1-RF", preset=page.run1)
    page.statuses["1-RF"] = status(slot, "Train the 1-RF", state)
    return key, state


def phase_pairs(page: Reflow, k: int, prev_key: str, prev) -> tuple[str, object]:
    """Solve round k's ODE from fresh noise: the pairs the next round trains on."""
    key = run_key("rfp", prev_key, page.pairs_cfg)
    title, name = f"Solve the {ROUND[k]} ODE for pairs", f"pairs from the {ROUND[k]}"
    ready = prev is not None and prev.done and not is_stale(prev)
    waiting = "" if ready else f"waiting for the {ROUND[k]}"
    slot = st.empty()
    runs = st.session_state.setdefault("runs", {})
    if not ready and key not in runs:
        page.statuses[name] = status(slot, title, None, waiting)
        return key, None
    cfg = page.cfg
    x0 = source_points(cfg.source, page.pairs_cfg.n_pairs, cfg.seed + 100 + k, cfg.upload)
    state = live_training(
        key, lambda: pair_phase(prev.sampler_model, x0.to(page.dev), page.pairs_cfg,
                                page.x1.to(page.dev)),
        chunk=1, meta={"data": page.data_key, "from": prev_key}, advance=lambda s, n:
        s.advance(n), progress=pair_progress, start="Generate pairs",
        preset=(f"pairs{k + 1}", page.run1, page.pairs_cfg), after=prev)
    page.statuses[name] = status(slot, title, state, waiting, ROUND[k])
    return key, state


def phase_round(page: Reflow, k: int, pairs_key: str, pairs, prev) -> tuple[str, object]:
    """Train the k-RF on the pairs of the (k - 1)-RF."""
    key = run_key(f"rf{k}", pairs_key, page.round_cfg)
    title = f"Train the {ROUND[k]} on them"
    ready = pairs is not None and pairs.done and not is_stale(pairs)
    waiting = "" if ready else "waiting for its pairs"
    slot = st.empty()
    if not ready and key not in st.session_state.setdefault("runs", {}):
        page.statuses[ROUND[k]] = status(slot, title, None, waiting)
        return key, None

    def build():
        generated, real = pairs.result()
        return reflow_state(prev.sampler_model, generated, page.round_cfg, real, round_k=k)

    r = page.round_cfg
    meta = {"label": f"{ROUND[k]} · {T_LABELS[r.t_dist]} t · {LOSS_LABELS[r.loss]} · "
                     f"p={r.p_real:g} · {'warm start' if r.init == 'previous' else 'from scratch'}"
                     f" · {r.n_pairs} pairs · {r.optim.steps} steps",
            "data": page.data_key, "round": k, "pairs_key": pairs_key}
    state = live_training(key, build, meta=meta, start=f"Train {ROUND[k]}",
                          preset=(f"rf{k}", page.run1, page.round_cfg), after=pairs)
    page.statuses[ROUND[k]] = status(slot, title, state, waiting, "set of pairs")
    return key, state
