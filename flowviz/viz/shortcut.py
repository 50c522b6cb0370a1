"""Figures of the shortcut page (article §5): the family of M-step paths and the
self-consistency picture. Pure functions: arrays in, plotly figures out."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from .figures import _arrow_heads, _np, scatter
from .style import ARROW, LINE, SOURCE, TARGET, base, template


def step_colors(ms) -> dict:
    """One colour per step count, dark (few, long steps) to light (many small steps)."""
    ms = list(ms)
    cols = sample_colorscale("Plasma", [0.85 * i / max(1, len(ms) - 1) for i in range(len(ms))])
    return dict(zip(ms, cols, strict=True))


def family_fig(trajs: dict, title: str = "", n_paths: int = 30, lim: float | None = 4.5,
               height: int = 520) -> go.Figure:
    """trajs: M -> (M + 1, N, 2) paths from the same noise. Each M is one polyline trace (its
    nodes marked), so a few long jumps and a smooth many-step curve are seen side by side."""
    fig = base(title, height, lim=lim)
    cols = step_colors(trajs)
    first = None
    for m, traj in trajs.items():
        tr = _np(traj)[:, :n_paths]
        first = tr[0] if first is None else first
        pad = np.full((1, tr.shape[1], 2), np.nan)
        poly = np.concatenate([tr, pad], 0).transpose(1, 0, 2).reshape(-1, 2)
        fig.add_trace(go.Scatter(
            x=poly[:, 0], y=poly[:, 1], name=f"M = {m}", hoverinfo="skip",
            mode="lines+markers" if m <= 8 else "lines",
            line=dict(color=cols[m], width=2.4 if m == 1 else 1.5),
            marker=dict(size=5, color=cols[m])))
    if first is not None:
        scatter(fig, first, "noise x0 (shared)", SOURCE, 7, 0.9)
    fig.update_layout(legend=dict(orientation="v", yanchor="top", y=1, xanchor="left", x=1.02),
                      margin=dict(b=40))  # beside the square plot, where the width is spare
    return fig


def _arrow(fig, p, q, color, name, width=3.0, dash=None, showlegend=True):
    p, q = np.asarray(p, float), np.asarray(q, float)
    fig.add_trace(go.Scatter(x=[p[0], q[0]], y=[p[1], q[1]], mode="lines", name=name,
                             line=dict(color=color, width=width, dash=dash),
                             showlegend=showlegend))
    for hx, hy in _arrow_heads(p[None], (q - p)[None], 0.18):
        fig.add_trace(go.Scatter(x=hx, y=hy, mode="lines", showlegend=False, hoverinfo="skip",
                                 line=dict(color=color, width=width)))


def consistency_fig(pic: dict, i: int = 0, fine=None, cloud=None, title: str = "",
                    lim: float | None = None, height: int = 520) -> go.Figure:
    """The self-consistency identity at point ``i`` of ``pic`` (flowviz.methods.shortcut.
    consistency_picture): one step of 2d (x -> one) against two steps of d (x -> mid -> two).
    ``fine``: optional (T, N, 2) reference path of the same points (the d = 0 field integrated
    finely over the same interval); ``cloud``: optional (K, 2) context points (e.g. x_t samples).
    The view zooms on the three points unless ``lim`` is given."""
    x, one, mid, two = (_np(pic[k])[i] for k in ("x", "one", "mid", "two"))
    fig = base(title, height, lim=lim)
    if cloud is not None:
        c = _np(cloud)
        fig.add_trace(go.Scattergl(x=c[:, 0], y=c[:, 1], mode="markers", name="x_t samples",
                                   marker=dict(size=3, color=LINE), hoverinfo="skip"))
    pts = [x, one, mid, two]
    if fine is not None:
        f = _np(fine)[:, i]
        fig.add_trace(go.Scatter(x=f[:, 0], y=f[:, 1], mode="lines", name="fine ODE path (d = 0)",
                                 line=dict(color="#6b7280", width=2, dash="dot")))
        pts.append(f[-1])
    _arrow(fig, x, one, "#F58518", "one step of 2d", 4)
    _arrow(fig, x, mid, "#4C78A8", "two steps of d", 3)
    _arrow(fig, mid, two, "#4C78A8", "", 3, showlegend=False)
    fig.add_trace(go.Scatter(x=[x[0]], y=[x[1]], mode="markers", name="x_t",
                             marker=dict(size=13, color=ARROW, symbol="x")))
    fig.add_trace(go.Scatter(x=[mid[0]], y=[mid[1]], mode="markers", name="x′ = x_t + d·s",
                             marker=dict(size=9, color=SOURCE)))
    fig.add_trace(go.Scatter(x=[one[0], two[0]], y=[one[1], two[1]], mode="markers",
                             name="ends", marker=dict(size=10, color=TARGET,
                                                      symbol=["diamond", "circle"])))
    if lim is None:
        p = np.stack(pts)
        c, r = (p.max(0) + p.min(0)) / 2, max(0.25, 0.65 * float((p.max(0) - p.min(0)).max()))
        fig.update_xaxes(range=[c[0] - r, c[0] + r])
        fig.update_yaxes(range=[c[1] - r, c[1] + r])
    return fig


def clouds_grid_fig(ref, clouds: dict, titles: dict | None = None, cols: int = 4,
                    lim: float = 4.5, panel: int = 250) -> go.Figure:
    """Small multiples: each cloud (N, 2) over the reference points ``ref`` (K, 2), one square
    panel per entry of ``clouds`` (label -> points), titled by ``titles`` (label -> text)."""
    from plotly.subplots import make_subplots

    names = list(clouds)
    rows = -(-len(names) // cols)
    fig = make_subplots(rows, cols, subplot_titles=[(titles or {}).get(n, str(n)) for n in names],
                        horizontal_spacing=0.03, vertical_spacing=0.08)
    r_ = _np(ref)
    for i, n in enumerate(names):
        row, col = i // cols + 1, i % cols + 1
        x = _np(clouds[n])
        for pts, name, color, size in ((r_, "data", TARGET, 3), (x, "samples", SOURCE, 3)):
            fig.add_trace(go.Scattergl(x=pts[:, 0], y=pts[:, 1], mode="markers", name=name,
                                       showlegend=i == 0, legendgroup=name, hoverinfo="skip",
                                       marker=dict(size=size, color=color, opacity=0.5)),
                          row=row, col=col)
        axis = "" if i == 0 else str(i + 1)
        fig.update_xaxes(range=[-lim, lim], showticklabels=False, row=row, col=col)
        fig.update_yaxes(range=[-lim, lim], showticklabels=False, scaleanchor=f"x{axis}",
                         scaleratio=1, row=row, col=col)
    fig.update_layout(template=template(), height=rows * panel + 80,
                      margin=dict(l=10, r=10, t=40, b=30),
                      legend=dict(orientation="h", yanchor="top", y=-0.02, x=0))
    return fig
