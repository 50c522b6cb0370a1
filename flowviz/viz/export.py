"""Figures out of the app: static PNG/SVG (plotly + kaleido), the data behind them as CSV/NPZ.

Static images come from kaleido (>= 1), which renders plotly.js in a local headless
Chrome/Chromium: no network. One kaleido browser is started on first use and reused
(0.2 s per image instead of 3-8 s), behind a lock because its queue serves one caller at a time.
"""

from __future__ import annotations

import csv
import functools
import io
import threading
import warnings

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

SCALE = 2  # pixels per layout pixel in PNGs (sharp on slides)
_LOCK = threading.Lock()


@functools.cache
def browser() -> str | None:
    """The Chrome/Chromium kaleido would drive (None: no static export on this machine)."""
    try:
        from choreographer.browsers.chromium import Chromium
    except ImportError:
        return None
    return Chromium.find_browser(skip_local=False)


def export_size(fig: go.Figure, width: int | None = None) -> tuple[int, int]:
    """(width, height) in layout pixels: the figure's own, else square-ish for 2-D axes."""
    h = int(fig.layout.height or 450)
    square = fig.layout.yaxis.scaleanchor == "x"
    w = width or fig.layout.width or (h + 120 if square else 2 * h)
    return int(w), h


def image_bytes(fig: go.Figure, fmt: str = "png", width: int | None = None,
                scale: int = SCALE) -> bytes:
    """``fig`` as PNG or SVG bytes, rendered offline by kaleido."""
    if fmt not in ("png", "svg"):
        raise ValueError(f"format must be png or svg, not {fmt!r}")
    import kaleido

    w, h = export_size(fig, width)
    with _LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "kopts ignored with a server": expected
        kaleido.start_sync_server(silence_warnings=True)
        return pio.to_image(fig, format=fmt, width=w, height=h, scale=scale if fmt == "png" else 1)


def _columns(trace) -> dict[str, np.ndarray]:
    """The data arrays of one trace: x, y (and z flattened over the x-y grid for heatmaps)."""
    if trace.type in ("heatmap", "contour") and trace.z is not None:
        z = np.asarray(trace.z, dtype=float)
        x = np.arange(z.shape[1]) if trace.x is None else np.asarray(trace.x, dtype=float)
        y = np.arange(z.shape[0]) if trace.y is None else np.asarray(trace.y, dtype=float)
        gx, gy = np.meshgrid(x, y)
        return {"x": gx.ravel(), "y": gy.ravel(), "z": z.ravel()}
    out = {}
    for axis in ("x", "y", "z"):
        v = getattr(trace, axis, None)
        if v is not None:
            out[axis] = np.asarray([np.nan if a is None else a for a in v], dtype=object)
    n = max((len(v) for v in out.values()), default=0)
    return {k: v for k, v in out.items() if len(v) == n}


def figure_csv(fig: go.Figure) -> str:
    """Every trace's points in long format: trace, name, i, x, y, z (gaps as empty cells)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trace", "name", "i", "x", "y", "z"])
    for k, tr in enumerate(fig.data):
        cols = _columns(tr)
        if not cols:
            continue
        n = len(next(iter(cols.values())))
        for i in range(n):
            w.writerow([k, tr.name or tr.type, i, *(_cell(cols[a][i]) if a in cols else ""
                                                    for a in ("x", "y", "z"))])
    return buf.getvalue()


def _cell(v) -> str:
    if isinstance(v, (int, float, np.floating, np.integer)):
        return "" if not np.isfinite(v) else repr(float(v))
    return str(v)


def npz_bytes(arrays: dict) -> bytes:
    """Named arrays (tensors or arrays) as one compressed .npz."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: _np(v) for k, v in arrays.items()})
    return buf.getvalue()


def _np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
