"""Figures of the InstaFlow page (article §4): paths per condition, per-condition quality,
latency vs quality."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .figures import _np
from .style import SEQ, base


def conditioned_paths_fig(trajs: dict, title: str = "", lim: float = 4.5, n_paths: int = 12,
                          height: int = 460) -> go.Figure:
    """trajs: condition name -> paths (T, N, 2); each condition in its own colour, with its
    start (hollow) and end (filled) points."""
    fig = base(title, height, lim=lim)
    for i, (name, tr) in enumerate(trajs.items()):
        tr = _np(tr)[:, :n_paths]
        c = SEQ[i % len(SEQ)]
        pad = np.full((1, tr.shape[1], 2), np.nan)
        poly = np.concatenate([tr, pad], 0).transpose(1, 0, 2).reshape(-1, 2)
        fig.add_trace(go.Scattergl(x=poly[:, 0], y=poly[:, 1], mode="lines", name=name,
                                   legendgroup=name, line=dict(color=c, width=1.2),
                                   hoverinfo="skip"))
        for pts, sym in ((tr[0], "circle-open"), (tr[-1], "circle")):
            fig.add_trace(go.Scattergl(x=pts[:, 0], y=pts[:, 1], mode="markers",
                                       legendgroup=name, showlegend=False, hoverinfo="skip",
                                       marker=dict(size=5, color=c, symbol=sym)))
    return fig


def per_condition_fig(names, values: dict, title: str = "", ylabel: str = "energy distance",
                      rare: int | None = None, floor: float = 1e-4, height: int = 400,
                      hline: float | None = None) -> go.Figure:
    """Grouped bars: one group per condition, one bar per stage (values: stage -> list), on a
    log axis (values below ``floor`` are drawn at it); the rare condition's label is marked."""
    fig = base(title, height, square=False, ylabel=ylabel)
    labels = [f"<b>{n} (rare)</b>" if i == rare else str(n) for i, n in enumerate(names)]
    for i, (stage, v) in enumerate(values.items()):
        v = np.asarray(v, dtype=float)
        fig.add_trace(go.Bar(x=labels, y=np.maximum(v, floor), name=stage,
                             marker_color=SEQ[i % len(SEQ)], customdata=v,
                             hovertemplate="%{x}: %{customdata:.4f}<extra>" + stage + "</extra>"))
    fig.update_layout(barmode="group")
    fig.update_yaxes(type="log")
    if hline is not None:
        fig.add_hline(y=hline, line=dict(dash="dash", color="gray"),
                      annotation_text=f"{hline:g}")
    return fig


def latency_fig(rows: list[tuple[str, float, float]], title: str = "",
                height: int = 420) -> go.Figure:
    """rows: (label, milliseconds per 10k samples, mean energy distance), log-log, one legend
    entry per sampler (labels beside the points overlap when timings are close)."""
    fig = base(title, height, square=False, xlabel="wall time per 10 000 samples (ms)",
               ylabel="mean energy distance per condition")
    ms = np.array([r[1] for r in rows])
    ed = np.maximum(np.array([r[2] for r in rows]), 1e-4)
    for i, (label, *_) in enumerate(rows):
        fig.add_trace(go.Scatter(x=[ms[i]], y=[ed[i]], mode="markers", name=label,
                                 marker=dict(size=14, color=SEQ[i % len(SEQ)],
                                             line=dict(width=1, color="white"))))
    fig.update_layout(legend=dict(orientation="v", x=1.02, xanchor="left", y=1, yanchor="top"))
    pad = 0.15
    fig.update_xaxes(type="log", range=[np.log10(ms.min()) - pad, np.log10(ms.max()) + pad])
    fig.update_yaxes(type="log", range=[np.log10(ed.min()) - pad, np.log10(ed.max()) + pad])
    return fig
