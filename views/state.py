"""The sidebar's settings as pages read them, and what identifies a session and its runs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import streamlit as st
import torch

import flowviz as fv
from flowviz import store
from flowviz.data import LABELS, SAMPLERS
from flowviz.experiment import UPLOAD

DATASETS = [*SAMPLERS, UPLOAD]
NAMES = LABELS | {UPLOAD: "Uploaded points (CSV/NPY)"}


@dataclass(frozen=True)
class Settings:
    source: str
    target: str
    seed: int
    device: str
    n_data: int  # size of the empirical data set behind the exact field
    h: float  # kernel width of the target mixture (0: the points themselves)
    upload: str  # digest of the uploaded file ('' when none)


def settings() -> Settings:
    s = st.session_state
    return Settings(s.get("source", "gaussian"), s.get("target", "moons"), int(s.get("seed", 0)),
                    s.get("device", "auto"), int(s.get("n_data", 1000)), float(s.get("h", 0.05)),
                    s.get("upload_digest", ""))


def page_settings() -> Settings:
    """The sidebar settings for a page; stops the page with a clear message when the chosen
    upload is missing or bad (every page starts here)."""
    cfg = settings()
    if not require_data(cfg):
        st.stop()
    return cfg


def uploaded_points() -> torch.Tensor | None:
    return st.session_state.get("upload_points")


def require_data(cfg: Settings) -> bool:
    """Show a clear message and return False when an upload is chosen but missing or bad."""
    if UPLOAD not in (cfg.source, cfg.target):
        return True
    if err := st.session_state.get("upload_error"):
        st.error(f"The uploaded file was not used: {err}")
    elif uploaded_points() is None:
        st.info("Upload a CSV or .npy file of N rows (x, y) in the sidebar, or pick a dataset.")
    return uploaded_points() is not None


def device(cfg: Settings) -> torch.device:
    try:
        return fv.pick_device(cfg.device)
    except ValueError as e:
        st.warning(f"{e}; using the CPU.")
        return torch.device("cpu")


def run_key(kind: str, *parts) -> str:
    """A run's key in session_state["runs"]: the same in every process (it also names the run's
    evaluations on disk, see views.results)."""
    return f"{kind}:{store.digest(*parts)}"


def session_id() -> str:
    """An id for this browser session (its trainings' names in the server-wide queue)."""
    return st.session_state.setdefault("session_id", uuid.uuid4().hex[:12])
