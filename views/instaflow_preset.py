"""The InstaFlow page opens on its preset: a finished pipeline whose config is exactly the
page's (trained offline, read-only, shared by every session)."""

from __future__ import annotations

import streamlit as st

from flowviz import presets
from flowviz.methods.instaflow import InstaFlowPipeline, InstaFlowRun


@st.cache_resource(show_spinner="Loading the preset…", max_entries=4)
def preset_jobs(name: str, dev: str) -> dict:
    """A preset pipeline's finished phases (read-only, shared by every session)."""
    return presets.load(presets.specs()[name], dev)


def open_preset(key: str, run: InstaFlowRun, label: str, dev) -> None:
    """Put the preset pipeline with exactly this config into runs[key], if there is one."""
    runs = st.session_state.setdefault("runs", {})
    if key in runs or not presets.enabled() or st.session_state.get(f"live:{key}"):
        return
    hit = presets.find(("student from teacher", run))
    if hit is None:
        return
    pipe = InstaFlowPipeline(run, dev)
    pipe.jobs, pipe.status = dict(preset_jobs(hit[0].name, str(dev))), "done"
    pipe.meta.update(preset=hit[0].name, label=label, run=run)
    runs[key] = pipe
