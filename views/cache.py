"""Data, the exact field and its reference curves, cached for the server (and on disk)."""

from __future__ import annotations

import streamlit as st
import torch

import flowviz as fv
from flowviz import store
from flowviz.experiment import UPLOAD
from views.state import Settings, uploaded_points


def cached(show_spinner: bool | str = False, max_entries: int = 16):
    """st.cache_data over flowviz.store.stored: in memory for this server, on disk across
    servers (assets/evals ships the presets' defaults)."""
    def deco(fn):
        return st.cache_data(show_spinner=show_spinner, max_entries=max_entries)(store.stored(fn))
    return deco


@st.cache_data(show_spinner=False, max_entries=32)
def data_points(name: str, n: int, seed: int, upload: str = "") -> torch.Tensor:
    """The empirical data set (N, 2) of a dataset name (uploads: the validated points)."""
    if name == UPLOAD:
        return uploaded_points()
    return fv.data.sample(name, n, seed)[0]


@st.cache_data(show_spinner=False, max_entries=32)
def source_points(name: str, n: int, seed: int, upload: str = "") -> torch.Tensor:
    if name == UPLOAD:
        pts = uploaded_points()
        return pts[torch.randint(0, len(pts), (n,), generator=torch.Generator().manual_seed(seed))]
    return fv.data.sample(name, n, seed)[0]


@st.cache_resource(show_spinner=False, max_entries=16)
def exact_field(cfg: Settings, path: str = "linear") -> fv.ExactField:
    """The closed-form field v* for the current data (read-only, shared across reruns)."""
    pts = data_points(cfg.target, cfg.n_data, cfg.seed, cfg.upload)
    return fv.ExactField(pts, fv.paths.PATHS[path], h=cfg.h)


@cached("Measuring the exact field at NFE 1…128…")
def exact_nfe_curve(cfg: Settings, n: int = 2000) -> tuple[list[int], list[float]]:
    """Energy distance of n Euler samples of the exact v* (from Gaussian noise) to n samples of
    the data, at NFE 1…128: the reference line of every quality-vs-NFE chart."""
    field = exact_field(cfg)
    ref = field.sample_target(n, torch.Generator().manual_seed(99))
    return fv.analysis.quality_vs_nfe(field, source_points("gaussian", n, cfg.seed + 1), ref)


@cached()
def noise_floor(cfg: Settings, n: int = 2000, reps: int = 3) -> float:
    """The sampling noise of an energy distance between two n-point sets: the RMS distance
    between independent n-point sets of the data itself. Every page draws and states distances
    below it as noise (flowviz.viz.style.format_distance)."""
    if UPLOAD in (cfg.source, cfg.target) or cfg.source != "gaussian":
        pts = data_points(cfg.target, cfg.n_data, cfg.seed, cfg.upload)
        return fv.metrics.ed_noise_floor(
            lambda k, g: pts[torch.randint(0, len(pts), (k,), generator=g)], n, reps)
    return fv.metrics.ed_noise_floor(exact_field(cfg).sample_target, n, reps)
