"""Figures of the ReFlow page (article §3, §3.1): densities over histograms, normal QQ plots,
two chosen pair lines and where they meet. Pure functions: arrays in, plotly figures out."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch

from .figures import _np, _segments, pair_lines_fig
from .style import ARROW, SEQ, base


def hist_pdf_fig(samples, x, pdf, title: str = "", xlabel: str = "", bins: int = 40,
                 rng: tuple[float, float] | None = None, height: int = 300,
                 pdf_name: str = "density", legend: bool = True) -> go.Figure:
    """A density-normalised histogram of ``samples`` (N,) with the curve ``pdf`` over ``x``."""
    s = _np(samples).ravel()
    lo, hi = rng if rng is not None else (float(s.min()), float(s.max()))
    counts, edges = np.histogram(s, bins=bins, range=(lo, hi), density=True)
    fig = base(title, height, square=False, xlabel=xlabel, ylabel="density")
    fig.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges),
                         name="samples", marker=dict(color=SEQ[0], opacity=0.55)))
    fig.add_trace(go.Scatter(x=_np(x), y=_np(pdf), mode="lines", name=pdf_name,
                             line=dict(color=SEQ[1], width=2.5)))
    fig.update_layout(bargap=0, showlegend=legend)
    return fig


def normal_quantiles(n: int) -> np.ndarray:
    """Φ^{-1}((i - 1/2) / n), i = 1..n: where n sorted N(0, 1) samples are expected to lie."""
    p = (torch.arange(1, n + 1, dtype=torch.float64) - 0.5) / n
    return torch.special.ndtri(p).numpy()


def qq_fig(z, title: str = "Normal QQ plot", height: int = 360, max_points: int = 400,
           names=("coordinate 1", "coordinate 2")) -> go.Figure:
    """Sorted coordinates of z (N, D) against the N(0, 1) quantiles; on the diagonal iff each
    coordinate is standard normal."""
    z = _np(z).reshape(len(z), -1)
    q = normal_quantiles(len(z))
    keep = np.unique(np.linspace(0, len(z) - 1, min(max_points, len(z))).round().astype(int))
    fig = base(title, height, square=False, xlabel="N(0, 1) quantile", ylabel="sample quantile")
    lim = float(max(abs(q).max(), 1.0))
    fig.add_trace(go.Scatter(x=[-lim, lim], y=[-lim, lim], mode="lines", name="y = x",
                             line=dict(color="gray", dash="dash")))
    for d in range(min(z.shape[1], len(names))):
        fig.add_trace(go.Scatter(x=q[keep], y=np.sort(z[:, d])[keep], mode="markers",
                                 name=names[d], marker=dict(size=4, color=SEQ[d])))
    fig.update_layout(legend=dict(orientation="v", x=0.02, y=0.98, xanchor="left",
                                  yanchor="top", bgcolor="rgba(255,255,255,0.7)"))
    return fig


def crossing_fig(x0, x1, i: int, j: int, crossing: dict, title: str = "", n_lines: int = 150,
                 lim: float | None = 4.5, height: int = 460) -> go.Figure:
    """The pair lines of a coupling, with pairs i and j drawn bold and their meeting point
    (``crossing``: flowviz.methods.reflow.segment_crossing of the two) marked when they cross."""
    x0, x1 = _np(x0), _np(x1)
    fig = pair_lines_fig(x0, x1, title, n_lines, lim, height)
    for k, (idx, col) in enumerate(((i, SEQ[4]), (j, SEQ[3]))):
        xs, ys = _segments(x0[idx:idx + 1], x1[idx:idx + 1])
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=f"pair {'AB'[k]} (#{idx})",
                                 line=dict(color=col, width=4), marker=dict(size=9)))
    if crossing.get("crosses"):
        p = crossing["point"]
        fig.add_trace(go.Scatter(
            x=[p[0]], y=[p[1]], mode="markers", name="lines meet here",
            marker=dict(size=16, color="rgba(0,0,0,0)", line=dict(color=ARROW, width=3))))
    return fig


def as_svg(fig: go.Figure, max_points: int = 50_000) -> go.Figure:
    """The same figure drawn with SVG traces (Scattergl -> Scatter). Browsers keep about 16
    WebGL contexts per page and drop the oldest beyond that (those charts go blank), so a page
    with many small 2-D charts of a few hundred points draws them as SVG. Figures with more than
    ``max_points`` WebGL points are returned as they are (SVG would be slow)."""
    data = [t.to_plotly_json() for t in fig.data]  # copies of each trace's properties
    gl = [t for t in data if t.get("type") == "scattergl"]
    if not gl or sum(len(t.get("x", ())) for t in gl) > max_points:
        return fig
    for t in gl:
        t["type"] = "scatter"
    # validated already: 5 ms instead of 50-150 ms per figure
    return go.Figure({"data": data, "layout": fig.layout.to_plotly_json()}, _validate=False)
