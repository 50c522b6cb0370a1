"""Resumable training in chunks: ``train_steps(state, k)`` advances k optimizer steps.

The same loop trains every method: an *objective* ``(model, generator) -> (loss, logs)`` draws
its own batch and returns the scalar loss plus named parts to log. A NaN/inf loss or gradient
stops training cleanly and restores the weights saved at the start of the chunk, so a page can
say what happened instead of showing a traceback. The state holds nothing Streamlit-specific;
pages keep it in ``st.session_state`` and call ``train_steps`` from a fragment.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

Objective = Callable[[torch.nn.Module, torch.Generator], tuple[torch.Tensor, dict]]


@dataclass(frozen=True)
class OptimConfig:
    steps: int = 3000
    lr: float = 3e-3
    warmup: int = 100
    schedule: str = "cosine"  # or "constant"
    min_lr_frac: float = 0.05  # cosine decays to lr * min_lr_frac
    ema: float = 0.999  # 0 disables the EMA copy
    grad_clip: float = 1.0  # 0 disables clipping
    weight_decay: float = 0.0
    seed: int = 0


@dataclass
class TrainState:
    model: torch.nn.Module
    objective: Objective
    cfg: OptimConfig
    ema: torch.nn.Module | None = None
    opt: torch.optim.Optimizer | None = None
    generator: torch.Generator | None = None
    step: int = 0
    seconds: float = 0.0  # wall time spent inside train_steps
    history: list[dict] = field(default_factory=list)
    status: str = "ready"  # ready | running | done | nan
    message: str = ""
    meta: dict = field(default_factory=dict)  # free-form labels kept with the run (UI, CLI)

    @property
    def done(self) -> bool:
        return self.step >= self.cfg.steps or self.status == "nan"

    @property
    def sampler_model(self) -> torch.nn.Module:
        """The weights to sample from: the EMA copy when there is one."""
        return self.ema if self.ema is not None else self.model


def init_state(model: torch.nn.Module, objective: Objective, cfg: OptimConfig) -> TrainState:
    torch.manual_seed(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = copy.deepcopy(model).requires_grad_(False) if cfg.ema > 0 else None
    if hasattr(objective, "ema"):  # objectives that bootstrap from the EMA copy (shortcut)
        objective.ema = ema
    gen = torch.Generator().manual_seed(cfg.seed)  # CPU: samplers draw on CPU, then move
    return TrainState(model, objective, cfg, ema, opt, gen)


def lr_at(cfg: OptimConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.schedule == "constant":
        return cfg.lr
    p = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))


def _finite_grads(model) -> bool:
    return all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


def train_steps(state: TrainState, k: int, log_every: int = 10) -> TrainState:
    """Advance up to ``k`` steps (never past cfg.steps). Returns the same, updated state."""
    if state.done:
        state.status = "nan" if state.status == "nan" else "done"
        return state
    cfg, model, opt = state.cfg, state.model, state.opt
    # everything a NaN rolls back: weights, optimizer, EMA (what pages sample from), step, log
    ema_sd = copy.deepcopy(state.ema.state_dict()) if state.ema is not None else None
    backup = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()), ema_sd,
              state.step, len(state.history))
    state.status = "running"
    model.train()
    t0 = time.perf_counter()
    for _ in range(min(k, cfg.steps - state.step)):
        for gr in opt.param_groups:
            gr["lr"] = lr_at(cfg, state.step)
        loss, logs = state.objective(model, state.generator)
        opt.zero_grad(set_to_none=True)
        if torch.isfinite(loss):
            loss.backward()
        if not torch.isfinite(loss) or not _finite_grads(model):
            state.status = "nan"
            state.message = (f"Training stopped at step {state.step}: the loss or a gradient "
                             "became NaN/inf. Weights restored to the last good chunk; try a "
                             "smaller learning rate or gradient clipping.")
            model.load_state_dict(backup[0])
            opt.load_state_dict(backup[1])
            if state.ema is not None:
                state.ema.load_state_dict(backup[2])
            state.step = backup[3]
            del state.history[backup[4]:]
            break
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if state.ema is not None:
            _ema_update(state.ema, model, min(cfg.ema, (1 + state.step) / (10 + state.step)))
        state.step += 1
        if state.step % log_every == 0 or state.step == cfg.steps:
            state.history.append({"step": state.step, "loss": loss.item(),
                                  **{n: float(v) for n, v in logs.items()}})
    state.seconds += time.perf_counter() - t0
    if state.status != "nan":
        state.status = "done" if state.step >= cfg.steps else "running"
    return state


@torch.no_grad()
def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
        pe.lerp_(pm, 1 - decay)
    for be, bm in zip(ema.buffers(), model.buffers(), strict=True):
        be.copy_(bm)
