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
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

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
    # what from_dict accepts (flowviz.config); a 2-D run's own limits are FMRun.check's
    BOUNDS: ClassVar[dict] = {"steps": (1, 1_000_000), "lr": (1e-8, 1.0),
                              "warmup": (0, 1_000_000), "min_lr_frac": (0.0, 1.0),
                              "ema": (0.0, 0.99999), "grad_clip": (0.0, 1e6),
                              "weight_decay": (0.0, 1.0), "seed": (0, 2**31 - 1)}


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
    # the NaN guard's roll-back buffers (train_steps), reused from call to call
    snapshot: object = field(default=None, repr=False, compare=False)

    @property
    def done(self) -> bool:
        return self.step >= self.cfg.steps or self.status == "nan"

    @property
    def sampler_model(self) -> torch.nn.Module:
        """The weights to sample from: the EMA copy when there is one."""
        return self.ema if self.ema is not None else self.model


def init_state(model: torch.nn.Module, objective: Objective, cfg: OptimConfig) -> TrainState:
    torch.manual_seed(cfg.seed)
    opt = _adam(model.parameters(), cfg)
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


def _adam(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Adam; its fused kernel where this torch has one for the device (the same update, one
    kernel per step instead of ~10 small ops per tensor: most of a 2-D step's overhead)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _grad_norm(model, clip: float) -> torch.Tensor:
    """Total gradient norm, clipping the gradients to ``clip`` when clip > 0. It is NaN/inf iff
    some gradient is (or the norm overflows), so one number serves the NaN guard too."""
    params = [p for p in model.parameters() if p.grad is not None]
    if not params:
        return torch.zeros(())
    return torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else math.inf)


class _Snapshot:
    """Everything a NaN rolls back (weights, EMA, optimizer state), copied into buffers that
    are kept and reused from chunk to chunk: one batched device copy per ``train_steps`` call
    instead of deep-copying three state dicts (which allocates and walks every tensor)."""

    def __init__(self):
        self.live: list[torch.Tensor] = []
        self.bufs: list[torch.Tensor] = []
        self.opt_keys: list = []

    @staticmethod
    def _tensors(state: TrainState) -> tuple[list[torch.Tensor], list]:
        live = list(state.model.state_dict(keep_vars=False).values())
        if state.ema is not None:
            live += list(state.ema.state_dict().values())
        keys = []
        for p, st in state.opt.state.items():
            for k, v in st.items():
                keys.append((p, k, torch.is_tensor(v)))
                live.append(v if torch.is_tensor(v) else torch.tensor(float(v)))
        return live, keys

    def take(self, state: TrainState) -> None:
        live, keys = self._tensors(state)
        same = len(live) == len(self.bufs) and all(
            a.shape == b.shape and a.dtype == b.dtype and a.device == b.device
            for a, b in zip(live, self.bufs, strict=True))
        if same:
            torch._foreach_copy_(self.bufs, [t.detach() for t in live])
        else:
            self.bufs = [t.detach().clone() for t in live]
        self.live, self.opt_keys = live, keys

    def restore(self, state: TrainState) -> None:
        n_opt = len(self.opt_keys)
        n_mod = len(self.bufs) - n_opt
        with torch.no_grad():
            torch._foreach_copy_([t for t in self.live[:n_mod]], self.bufs[:n_mod])
        state.opt.state.clear()
        for (p, k, is_t), buf in zip(self.opt_keys, self.bufs[n_mod:], strict=True):
            state.opt.state[p][k] = buf.clone() if is_t else float(buf)


def _nan_message(step: int) -> str:
    return (f"Training stopped at step {step}: the loss or a gradient became NaN/inf. Weights "
            "restored to the last good chunk; try a smaller learning rate or gradient clipping.")


def train_steps(state: TrainState, k: int, log_every: int = 10,
                check_every: int | None = None) -> TrainState:
    """Advance up to ``k`` steps (never past cfg.steps). Returns the same, updated state.

    NaN guard: a NaN/inf loss or gradient norm rolls weights, EMA, optimizer, step and log back
    to the start of this call. On the CPU it is checked after every step (reading a number
    costs nothing there). On an accelerator reading it back waits for the device, so the
    flags stay on the device and are read every ``check_every`` steps (default there: 50), at
    each log entry and at the end of the call: the roll-back is the same, only the steps
    between a NaN and its check are computed and thrown away."""
    if state.done:
        state.status = "nan" if state.status == "nan" else "done"
        return state
    cfg, model, opt = state.cfg, state.model, state.opt
    if not isinstance(state.snapshot, _Snapshot):
        state.snapshot = _Snapshot()
    snap = state.snapshot
    snap.take(state)
    start_step, start_hist = state.step, len(state.history)
    if check_every is None:
        p0 = next(iter(model.parameters()), None)
        check_every = 50 if p0 is not None and p0.device.type != "cpu" else 1
    lazy = check_every > 1
    flags: list[torch.Tensor] = []  # on-device "this step was finite", since the last check
    flag_step = state.step  # the step of flags[0]
    state.status = "running"
    model.train()
    t0 = time.perf_counter()

    def stop(at: int) -> None:
        state.status = "nan"
        state.message = _nan_message(at)
        snap.restore(state)
        state.step = start_step
        del state.history[start_hist:]

    def all_finite() -> bool:
        nonlocal flags, flag_step
        if not flags:
            return True
        ok = torch.stack(flags).cpu()
        if bool(ok.all()):
            flag_step += len(flags)
            flags = []
            return True
        stop(flag_step + int((~ok).nonzero()[0, 0]))
        return False

    for _ in range(min(k, cfg.steps - state.step)):
        for gr in opt.param_groups:
            gr["lr"] = lr_at(cfg, state.step)
        loss, logs = state.objective(model, state.generator)
        opt.zero_grad(set_to_none=True)
        if lazy:
            loss.backward()
            flags.append(torch.isfinite(loss) & torch.isfinite(_grad_norm(model, cfg.grad_clip)))
        else:
            finite = bool(torch.isfinite(loss))
            if finite:
                loss.backward()
                finite = bool(torch.isfinite(_grad_norm(model, cfg.grad_clip)))
            if not finite:
                stop(state.step)
                break
        opt.step()
        if state.ema is not None:
            _ema_update(state.ema, model, min(cfg.ema, (1 + state.step) / (10 + state.step)))
        state.step += 1
        log = state.step % log_every == 0 or state.step == cfg.steps
        if (log or len(flags) >= check_every) and not all_finite():
            break
        if log:
            state.history.append({"step": state.step, "loss": loss.item(),
                                  **{n: float(v) for n, v in logs.items()}})
    else:
        all_finite()
    state.seconds += time.perf_counter() - t0
    if state.status != "nan":
        state.status = "done" if state.step >= cfg.steps else "running"
    return state


@torch.no_grad()
def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    pe, pm = list(ema.parameters()), list(model.parameters())
    if len(pe) != len(pm):
        raise ValueError("the EMA copy and the model have different parameters")
    torch._foreach_lerp_(pe, pm, 1 - decay)
    for be, bm in zip(ema.buffers(), model.buffers(), strict=True):
        be.copy_(bm)


def step_ms(states: dict, n: int = 20, reps: int = 5) -> dict:
    """Milliseconds per optimizer step of each (fresh, long) TrainState, timed in interleaved
    chunks of ``n`` steps, median of ``reps`` (so load changes hit all of them alike)."""
    for st in states.values():
        train_steps(st, 3)  # warm-up (the first JVP call traces its decompositions)
    times = {k: [] for k in states}
    for _ in range(reps):
        for k, st in states.items():
            t = time.perf_counter()
            train_steps(st, n)
            times[k].append(1e3 * (time.perf_counter() - t) / n)
    return {k: statistics.median(v) for k, v in times.items()}
