"""Figures of the InstaFlow page (article §4): paths per condition, per-condition quality,
latency vs quality. Stages are coloured by the method their label names (style.method_color)."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from .figures import _np
from .style import SEQ, base, format_distance, log_axis, method_color

NOISE_BAND = "rgba(148,163,184,0.25)"
PATTERNS = ["", "/", "x", "."]  # a second bar of the same method's colour gets a pattern


def conditioned_paths_fig(trajs: dict, title: str = "", lim: float = 4.5, n_paths: int = 12,
                          height: int = 460) -> go.Figure:
    """trajs: condition name -> paths (T, N, 2); each condition in its own colour (conditions
    are not methods), with its start (hollow) and end (filled) points."""
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
                      rare: int | None = None, floor: float | None = None,
                      height: int = 400) -> go.Figure:
    """Grouped bars: one group per condition, one bar per stage (values: stage label -> list)
    in the colour of the method the label names, on a decade log axis. ``floor``: the
    distances' sampling noise, drawn as a grey band; a bar below it ends on the band's lower
    edge and its hover says "≤ noise (value)". The rare condition's label is marked."""
    fig = base(title, height, square=False, ylabel=ylabel)
    labels = [f"<b>{n} (rare)</b>" if i == rare else str(n) for i, n in enumerate(names)]
    lo = floor / 4 if floor else 1e-4
    seen: dict[str, int] = {}
    for stage, v in values.items():
        v = np.asarray(v, dtype=float)
        color = method_color(stage)
        k = seen[color] = seen.get(color, -1) + 1
        fig.add_trace(go.Bar(x=labels, y=np.maximum(v, lo), name=stage, customdata=v,
                             text=[format_distance(a, floor) for a in v], textposition="none",
                             marker=dict(color=color,
                                         pattern_shape=PATTERNS[k % len(PATTERNS)]),
                             hovertemplate="%{x}: %{text}<extra>" + stage + "</extra>"))
    fig.update_layout(barmode="group")
    if floor:
        fig.add_hrect(y0=lo, y1=floor, fillcolor=NOISE_BAND, line_width=0, layer="above")
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="≤ sampling noise",
                                 marker=dict(symbol="square", size=12,
                                             color="rgba(148,163,184,0.45)")))
    top = max((float(np.max(np.maximum(np.asarray(v, float), lo))) for v in values.values()),
              default=1.0)
    return log_axis(fig, "y", lo=lo, hi=top)


def latency_fig(rows: list[tuple[str, float, float]], title: str = "",
                height: int = 420) -> go.Figure:
    """rows: (sampler label, milliseconds per 10k samples, mean energy distance), log-log in
    decades, each point in the colour of the method its label names (repeats get other
    symbols), one legend entry per sampler."""
    fig = base(title, height, square=False, xlabel="wall time per 10 000 samples (ms)",
               ylabel="mean energy distance")
    symbols = ["circle", "square", "diamond", "triangle-up", "cross"]
    seen: dict[str, int] = {}
    for label, ms, ed in rows:
        color = method_color(label)
        k = seen[color] = seen.get(color, -1) + 1
        fig.add_trace(go.Scatter(x=[ms], y=[max(ed, 1e-4)], mode="markers", name=label,
                                 marker=dict(size=14, color=color, symbol=symbols[k % 5],
                                             line=dict(width=1, color="white"))))
    fig.update_layout(legend=dict(orientation="v", x=1.02, xanchor="left", y=1, yanchor="top"),
                      margin=dict(b=60))
    for axis, v in (("x", [r[1] for r in rows]), ("y", [max(r[2], 1e-4) for r in rows])):
        lo = 10 ** math.floor(math.log10(min(v)))  # from the decade below: two labelled ticks
        log_axis(fig, axis, lo=lo, hi=max(max(v) * 1.3, 10 * lo))
    return fig
