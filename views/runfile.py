"""Load a run slot from a file: a checkpoint (.pt) or config (.json) of the page's model kind."""

from __future__ import annotations

import hashlib

import streamlit as st

from flowviz import checkpoint, config
from flowviz.experiment import phases
from views.state import device, settings, uploaded_points

DATA_FIELDS = ("source", "target", "n_data", "data_seed", "h")


def run_file(key: str, run, meta: dict | None) -> None:
    """Load this run slot from a file: a checkpoint (.pt) or config (.json) of the page's model
    kind, validated by flowviz.checkpoint.load_upload (weights_only, the kind, the config's
    fields, the weights' shapes) and required to use the sidebar's data. A config is trained
    live; a checkpoint is shown as it is."""
    msg_key = f"runfile_msg:{key}"
    with st.expander("Load a checkpoint (.pt) or config (.json) for this run",
                     expanded=msg_key in st.session_state):
        f = st.file_uploader("A checkpoint saved by `python -m flowviz train --out`, or a run's "
                             "config JSON (as shown under the controls)", type=["pt", "json"],
                             key=f"runfile:{key}")
        if f is not None and st.session_state.get(f"runfile_digest:{key}") != (
                digest := hashlib.sha1(f.getvalue()).hexdigest()):
            st.session_state[f"runfile_digest:{key}"] = digest
            st.session_state[msg_key] = _read_run_file(key, f.name, f.getvalue(), run, meta)
            if st.session_state[msg_key][0] == "success":
                st.rerun()  # the controls above show the new run
        if (m := st.session_state.get(msg_key)) is not None:
            (st.error if m[0] == "error" else st.success)(m[1])


def _read_run_file(key: str, name: str, raw: bytes, run, meta: dict | None) -> tuple[str, str]:
    try:
        new, state = checkpoint.load_upload(name, raw, type(run), device(settings()),
                                            uploaded_points())
        if other := {k: v for k, v in config.diff(new, run).items() if k in DATA_FIELDS}:
            raise checkpoint.CheckpointError(
                "it was made for other data (" + ", ".join(
                    f"{k} = {a!r}, here {b!r}" for k, (a, b) in sorted(other.items()))
                + "): choose the same data in the sidebar first.")
    except checkpoint.CheckpointError as e:
        return "error", f"{name} was not loaded: {e}"
    trains = state is None
    if trains:  # a config: train it live in this slot
        state = phases(new, device(settings()), uploaded_points())["run"]({})
    state.meta.update(meta or {})
    state.meta.update(uploaded=name, label=f"uploaded {name}")
    st.session_state["runs"][key] = state
    st.session_state[f"live:{key}"] = True
    st.session_state[f"running:{key}"] = trains
    changed = config.diff(new, run)
    return "success", (f"Loaded {name}" + (" and training it live" if trains else "")
                       + (": it differs from the controls in " + ", ".join(
                           f"{k} = {a!r}" for k, (a, _) in sorted(changed.items()))
                          if changed else ": the same settings as the controls") + ".")
