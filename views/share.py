"""Figures and settings out of a page: download menus under each chart, "reproduce this".

Files are made only when a download is clicked (Streamlit runs a callable ``data`` on
demand), so the menus cost a page almost nothing to draw.
"""

from __future__ import annotations

import json
import re

import streamlit as st

from flowviz.viz import export
from flowviz.viz.animate import trajectory_gif

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


def reproduce_box(page: str, prefix: str, runs: dict[str, str] | None = None,
                  fm: bool = False) -> None:
    """"Reproduce this": the page's settings (sidebar + its ``prefix``-keyed widgets) as JSON,
    the link that reopens the view, the command line that draws the same figures, and the
    configs of its training runs (``runs``: label -> JSON); ``fm``: the first is an FMRun,
    which ``python -m flowviz train --config`` trains."""
    from urllib.parse import urlencode

    from flowviz.reproduce import PAGES, FigureSpec
    from views.common import settings
    from views.present import presenting

    if presenting():
        return
    cfg = settings()
    widgets = {k: v for k, v in sorted(st.session_state.to_dict().items())
               if k.startswith(prefix) and isinstance(v, (bool, int, float, str, tuple, list))}
    conf = {"page": page, "source": cfg.source, "target": cfg.target, "seed": cfg.seed,
            "n_data": cfg.n_data, "h": cfg.h, "device": cfg.device} | widgets
    with st.expander("Reproduce this: settings, link, command line", icon=":material/replay:"):
        st.code(json.dumps(conf, indent=2, default=str), language="json")
        query = urlencode(st.query_params.to_dict())
        st.markdown(f"**Link to this view**: the page's address with `?{query}`" if query else
                    "**Link**: every setting is at its default; changed settings appear in the "
                    "address bar, so copying it shares the view.")
        if page in PAGES and cfg.source == "gaussian" and cfg.upload == "":
            spec = FigureSpec(page, cfg.target, cfg.seed, cfg.n_data, cfg.h,
                              float(widgets.get(f"{prefix}t", FigureSpec.t)))
            st.markdown("**The same figures, headless** (PNG, SVG and CSV into `figures/`):")
            st.code(spec.command(), language="bash")
        for i, (label, text) in enumerate((runs or {}).items()):
            st.markdown(f"**{label}**" + (": save it as `run.json`, then `python -m flowviz "
                                          "train --config run.json --out run.pt`"
                                          if fm and i == 0 else ""))
            st.code(text, language="json")
