"""Checkpoints: config + weights (+ optimizer for resuming), loaded safely.

Files are plain dicts of tensors, numbers, strings and lists, written with torch.save and read
with ``torch.load(weights_only=True)``: nothing in a checkpoint is ever unpickled as code.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from .experiment import FMRun, build_fm
from .train import TrainState

FORMAT = "flowviz-checkpoint/1"


class CheckpointError(ValueError):
    """A file that is not a usable flowviz checkpoint; the message is shown to the user."""


def save(path: str | Path, state: TrainState, run: FMRun) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({
        "format": FORMAT,
        "kind": "fm",
        "config": dataclasses.asdict(run),
        "model": state.model.state_dict(),
        "ema": state.ema.state_dict() if state.ema is not None else None,
        "optimizer": state.opt.state_dict(),
        "generator": state.generator.get_state(),
        "step": state.step,
        "seconds": state.seconds,
        "history": state.history,
    }, path)
    return path


def read(path_or_file) -> dict:
    """Load and validate the raw checkpoint dict (weights_only: no code is unpickled)."""
    try:
        ck = torch.load(path_or_file, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to read becomes a user message
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(f"Not a readable checkpoint ({type(e).__name__}: {first[:120]}). "
                              "Only files saved by flowviz load; nothing else is unpickled.") \
            from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"Not a flowviz checkpoint (expected format {FORMAT!r}).")
    return ck


def load_fm(path_or_file, device="cpu") -> tuple[FMRun, TrainState]:
    """Rebuild a resumable 1-RF training state from a checkpoint written by ``save``."""
    ck = read(path_or_file)
    if ck.get("kind") != "fm":
        raise CheckpointError(f"This checkpoint holds a {ck.get('kind')!r} model, not 'fm'.")
    try:
        run = FMRun.from_dict(ck["config"])
        state = build_fm(run, device)
        state.model.load_state_dict(ck["model"])
        if state.ema is not None and ck["ema"] is not None:
            state.ema.load_state_dict(ck["ema"])
        state.opt.load_state_dict(ck["optimizer"])
    except CheckpointError:
        raise
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"Checkpoint does not match its config: {e}") from None
    state.generator.set_state(ck["generator"])
    state.step, state.seconds, state.history = ck["step"], ck["seconds"], list(ck["history"])
    state.status = "done" if state.done else "ready"
    return run, state
