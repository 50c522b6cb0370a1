"""Charts on a page: a plotly figure with its download menu (files made only when clicked:
Streamlit runs a callable ``data`` on demand), enlarged in the presenter view."""

from __future__ import annotations

import re

import streamlit as st

from flowviz.viz import export
from flowviz.viz.animate import trajectory_gif
from flowviz.viz.reflow import as_svg
from views.present import enlarge, presenting

PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
NO_BROWSER = "PNG/SVG need Chrome or Chromium for kaleido (none found on this server)."


def _slug(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("_")[:60] or "figure"


def downloads(fig, key: str, traj=None, ts=None, arrays: dict | None = None) -> None:
    """A small "Download" menu: PNG, SVG, CSV of the traces; NPZ of ``arrays`` (and ``traj``,
    ``ts``); an animated GIF of ``traj`` (T, N, 2) flowing from t = ts[0] to ts[-1]."""
    name = _slug(key)
    arrays = dict(arrays or {})
    if traj is not None:
        arrays.setdefault("traj", traj)
        if ts is not None:
            arrays.setdefault("ts", ts)
    static = export.browser() is not None
    title = fig.layout.title.text or ""
    with st.popover("Download", icon=":material/download:", type="tertiary"), \
            st.container(horizontal=True, wrap=False):  # one row, labels in full
        for fmt in ("png", "svg"):
            st.download_button(fmt.upper(), lambda f=fmt: export.image_bytes(fig, f),
                               f"{name}.{fmt}", f"image/{'svg+xml' if fmt == 'svg' else fmt}",
                               key=f"dl-{fmt}:{key}", on_click="ignore", disabled=not static,
                               help=None if static else NO_BROWSER)
        st.download_button("CSV", lambda: export.figure_csv(fig), f"{name}.csv", "text/csv",
                           key=f"dl-csv:{key}", on_click="ignore",
                           help="Every trace's points: trace, name, i, x, y, z")
        if arrays:
            st.download_button("NPZ", lambda: export.npz_bytes(arrays), f"{name}.npz",
                               "application/octet-stream", key=f"dl-npz:{key}",
                               on_click="ignore", help=", ".join(
                                   f"{k} {tuple(v.shape)}" for k, v in arrays.items()))
        if traj is not None:
            st.download_button("GIF", lambda: trajectory_gif(traj, ts, title), f"{name}.gif",
                               "image/gif", key=f"dl-gif:{key}", on_click="ignore",
                               help="The samples flowing along the ODE, one frame per step")


def chart(fig, key: str, traj=None, ts=None, arrays: dict | None = None) -> None:
    """A plotly figure with a download menu (PNG, SVG, CSV; NPZ of ``arrays``/``traj``; a GIF
    of ``traj`` (T, N, 2)). The presenter view draws it larger and without the menu."""
    if presenting():
        enlarge(fig)
    # SVG, not WebGL: a page keeps ~16 WebGL contexts and blanks its oldest charts beyond that
    st.plotly_chart(as_svg(fig), key=key, config=PLOTLY_CONFIG)
    if not presenting():
        downloads(fig, key, traj, ts, arrays)
