"""The digits presets of the Scaling page and their sample grids: loaded once per server, the
grids sampled once and kept on disk (flowviz.store), drawn one row per method."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from flowviz import checkpoint, store
from flowviz.images import report
from views.cache import cached

PRESETS = Path(__file__).resolve().parents[1] / "assets" / "presets" / "images"
ORDER = ("fm", "reflow", "distill", "shortcut", "meanflow")
N_GRID = 16  # samples per grid (4 x 4)


def preset_path(method: str) -> Path:
    return PRESETS / f"digits-{method}.pt"


@st.cache_resource(show_spinner="Loading the digits presets…")
def load_presets() -> dict:
    """method -> (run, network) of every digits preset found in assets/presets/images."""
    out = {}
    for m in ORDER:
        if preset_path(m).is_file():
            run, state = checkpoint.load(preset_path(m), kind="image")
            out[m] = (run, state.sampler_model.eval())
    return out


def stamp(path: Path) -> str:
    """A file's content digest: a retrained preset is sampled afresh ('' when absent)."""
    return store.file_digest(str(path)) if path.is_file() else ""


@cached(show_spinner="Sampling the presets (once: then kept on disk)…")
def grids(method: str, nfe_list: tuple, seed: int, stamp: str = "") -> dict:
    """NFE -> (uint8 grid, seconds) of a preset, all from the same noise, and "machine".
    ``stamp``: the preset file's digest."""
    run, net = load_presets()[method]
    return report.sample_grids(run, net, nfe_list, N_GRID, seed)


def drawn(grid):
    """A stored sample grid (kept at scale 1 on disk) drawn 4x, crisp on a projector."""
    return grid.repeat(4, 0).repeat(4, 1)


def grid_header(first: str, columns) -> None:
    cols = st.columns([1.3] + [1] * len(columns))
    cols[0].markdown(first)
    for c, name in zip(cols[1:], columns, strict=True):
        c.markdown(f"**{name}**")


def grid_rows(rows: dict, nfe_list) -> None:
    """One row per method (label -> grids), one column per NFE, each timed."""
    for label, g in rows.items():
        cols = st.columns([1.3] + [1] * len(nfe_list))
        cols[0].markdown(label)
        missing = [k for k in nfe_list if k not in g]
        for c, k in zip(cols[1:], nfe_list, strict=True):
            if k in g:
                c.image(drawn(g[k][0]), caption=f"{1e3 * g[k][1]:.0f} ms", width="stretch")
            elif k == missing[0]:
                c.caption("one step only")
