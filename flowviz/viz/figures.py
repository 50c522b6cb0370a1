"""Pure figure builders: arrays in, plotly figures out (no Streamlit; testable headless).

Inputs are tensors or arrays with documented shapes; every 2-D figure uses the same square axes
so clouds, lines and fields line up across panels.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .style import (
    ARROW,
    LINE,
    PATH,
    SEQ,
    SOURCE,
    TARGET,
    base,
    format_distance,
    log_axis,
    method_styles,
)


def _np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def _segments(p0: np.ndarray, p1: np.ndarray):
    """Polyline coordinates for many segments, separated by None (one trace, fast)."""
    n = len(p0)
    xs = np.full(3 * n, np.nan)
    ys = np.full(3 * n, np.nan)
    xs[0::3], xs[1::3] = p0[:, 0], p1[:, 0]
    ys[0::3], ys[1::3] = p0[:, 1], p1[:, 1]
    return xs, ys


def _arrow_heads(p: np.ndarray, v: np.ndarray, size: float):
    """Two short barbs per arrow tip at +-25 degrees."""
    norm = np.linalg.norm(v, axis=1, keepdims=True).clip(1e-12)
    u = v / norm
    heads = []
    for ang in (np.deg2rad(155), -np.deg2rad(155)):
        c, s = np.cos(ang), np.sin(ang)
        r = np.stack([c * u[:, 0] - s * u[:, 1], s * u[:, 0] + c * u[:, 1]], 1)
        heads.append(_segments(p + v, p + v + size * np.minimum(1, norm / size) * r))
    return heads


def scatter(fig: go.Figure, x, name: str, color: str, size: int = 4, opacity: float = 0.6,
            text=None) -> go.Figure:
    x = _np(x)
    fig.add_trace(go.Scattergl(x=x[:, 0], y=x[:, 1], mode="markers", name=name, text=text,
                               marker=dict(size=size, color=color, opacity=opacity)))
    return fig


def clouds_fig(clouds: dict, title: str = "", lim: float | None = 4.5, height: int = 420):
    """clouds: name -> (N, 2) points, drawn in SEQ colours."""
    fig = base(title, height, lim=lim)
    for i, (name, x) in enumerate(clouds.items()):
        scatter(fig, x, name, SEQ[i % len(SEQ)])
    return fig


def pair_lines_fig(x0, x1, title: str = "Straight pair lines (x0 → x1)", n_lines: int = 150,
                   lim: float | None = 4.5, height: int = 460, highlight=None) -> go.Figure:
    """Segments x0_i -> x1_i for the first n_lines pairs, over both clouds.

    ``highlight``: optional boolean (N,) mask of lines to draw in a strong colour (e.g. pairs
    passing near a probe point)."""
    x0, x1 = _np(x0), _np(x1)
    fig = base(title, height, lim=lim)
    m = slice(0, n_lines)
    xs, ys = _segments(x0[m], x1[m])
    fig.add_trace(go.Scattergl(x=xs, y=ys, mode="lines", line=dict(color=LINE, width=1),
                               name="pair lines", hoverinfo="skip"))
    if highlight is not None:
        h = np.asarray(highlight)
        xs, ys = _segments(x0[h], x1[h])
        fig.add_trace(go.Scattergl(x=xs, y=ys, mode="lines", name="near the probe",
                                   line=dict(color="#F58518", width=2)))
    scatter(fig, x0[m], "x0 ~ source", SOURCE, 5, 0.8)
    scatter(fig, x1[m], "x1 ~ data", TARGET, 5, 0.8)
    return fig


def _colorbar(title: str) -> dict:
    """A slim colour bar titled along its side, clear of its top tick label."""
    return dict(title=dict(text=title, side="right"), thickness=12)


def field_fig(points, vectors, title: str = "", heat=None, lim: float | None = 4.5,
              scale: float = 0.15, height: int = 460, heat_name: str = "",
              colorscale: str = "Viridis") -> go.Figure:
    """Arrows ``vectors`` (G, 2) at ``points`` (G, 2), optionally over a heatmap.

    ``heat``: (xs (W,), ys (H,), z (H, W)) drawn below the arrows. Arrows are scaled by ``scale``
    (display units per velocity unit) and capped so long ones stay readable.
    """
    p, v = _np(points), _np(vectors) * scale
    fig = base(title, height, lim=lim)
    if heat is not None:
        hx, hy, z = (_np(a) for a in heat)
        fig.add_trace(go.Heatmap(x=hx, y=hy, z=z, colorscale=colorscale, opacity=0.85,
                                 colorbar=_colorbar(heat_name), name=heat_name))
    cap = 0.45 * (p[:, 0].max() - p[:, 0].min()) / max(1, int(np.sqrt(len(p))) - 1) * 2
    n = np.linalg.norm(v, axis=1, keepdims=True)
    v = v * np.minimum(1, cap / n.clip(1e-12))
    xs, ys = _segments(p, p + v)
    color = "white" if heat is not None else ARROW
    fig.add_trace(go.Scattergl(x=xs, y=ys, mode="lines", line=dict(color=color, width=1.6),
                               name="velocity", hoverinfo="skip"))
    for hx_, hy_ in _arrow_heads(p, v, 0.35 * cap):
        fig.add_trace(go.Scattergl(x=hx_, y=hy_, mode="lines", showlegend=False,
                                   line=dict(color=color, width=1.6), hoverinfo="skip"))
    return fig


def trajectories_fig(traj, title: str = "", chords: bool = True, n_paths: int = 120,
                     lim: float | None = 4.5, height: int = 460, color: str = PATH,
                     fig: go.Figure | None = None, name: str = "trajectories") -> go.Figure:
    """Paths traj (T, N, 2) with start/end markers; ``chords`` adds the straight x0 -> x1 line
    of each path so the curvature is visible."""
    tr = _np(traj)[:, :n_paths]
    fig = fig or base(title, height, lim=lim)
    if chords:
        xs, ys = _segments(tr[0], tr[-1])
        fig.add_trace(go.Scattergl(x=xs, y=ys, mode="lines", name="straight chord",
                                   line=dict(color=LINE, width=1, dash="dot"), hoverinfo="skip"))
    t, n = tr.shape[:2]
    pad = np.full((1, n, 2), np.nan)
    poly = np.concatenate([tr, pad], 0).transpose(1, 0, 2).reshape(-1, 2)
    fig.add_trace(go.Scattergl(x=poly[:, 0], y=poly[:, 1], mode="lines", name=name,
                               line=dict(color=color, width=1.3), hoverinfo="skip"))
    scatter(fig, tr[0], "start x0", SOURCE, 4, 0.8)
    scatter(fig, tr[-1], "end x1", TARGET, 4, 0.8)
    return fig


def heatmap_fig(xs, ys, z, title: str = "", name: str = "", lim: float | None = 4.5,
                height: int = 420, colorscale: str = "Viridis", zmin=None, zmax=None):
    fig = base(title, height, lim=lim)
    fig.add_trace(go.Heatmap(x=_np(xs), y=_np(ys), z=_np(z), colorscale=colorscale, zmin=zmin,
                             zmax=zmax, colorbar=_colorbar(name)))
    return fig


def curves_fig(curves: dict, title: str = "", xlabel: str = "", ylabel: str = "",
               logx: bool = False, logy: bool = False, height: int = 380, markers=True,
               hlines: dict | None = None, floor: float | None = None) -> go.Figure:
    """curves: label -> (x, y), each in its method's colour (style.method_styles). ``floor``:
    the sampling noise of y (a distance between two samples of the same law): drawn as a grey
    band, and points below it sit on the band's lower edge with their value in the hover."""
    fig = base(title, height, square=False, xlabel=xlabel, ylabel=ylabel)
    styles = method_styles(curves)
    lo = floor / 4 if floor else None
    for label, (x, y) in curves.items():
        y = _np(y).astype(float)
        shown, text = y, None
        if floor:
            shown = np.maximum(y, lo)
            text = [format_distance(v, floor) for v in y]
        fig.add_trace(go.Scatter(x=_np(x), y=shown, name=label, text=text,
                                 hovertemplate="%{x}: %{text}<extra>%{fullData.name}</extra>"
                                 if floor else None,
                                 mode="lines+markers" if markers else "lines",
                                 line=dict(width=2.2, **styles[label])))
    for label, y in (hlines or {}).items():
        fig.add_hline(y=y, line=dict(dash="dash", color="gray"), annotation_text=label)
    if logx:
        log_axis(fig, "x")
    if floor:
        fig.add_hrect(y0=lo, y1=floor, fillcolor="rgba(148,163,184,0.25)", line_width=0,
                      layer="below")
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="≤ sampling noise",
                                 marker=dict(symbol="square", size=12,
                                             color="rgba(148,163,184,0.45)")))
    if logy:
        log_axis(fig, "y", lo=lo)
    return fig


def quality_vs_nfe_fig(curves: dict, metric: str = "energy distance", title: str = "",
                       height: int = 380, hlines: dict | None = None,
                       floor: float | None = None) -> go.Figure:
    """curves: label -> (nfe list, metric list), log-log with NFE ticks at powers of two;
    ``floor``: the metric's sampling noise (see curves_fig)."""
    fig = curves_fig(curves, title or f"Quality vs NFE ({metric}, lower is better)", "NFE",
                     metric, logx=True, logy=True, height=height, hlines=hlines, floor=floor)
    nfes = [float(v) for tr in fig.data if tr.x is not None for v in tr.x if v is not None]
    ticks = [n for n in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) if not nfes or n <= max(nfes)]
    fig.update_xaxes(tickvals=ticks, ticktext=[str(n) for n in ticks])
    return fig


def loss_fig(history: list[dict], keys=("loss",), title: str = "Training loss",
             height: int = 300) -> go.Figure:
    steps = [h["step"] for h in history]
    curves = {k: (steps, [h[k] for h in history]) for k in keys if history and k in history[0]}
    return curves_fig(curves, title, "step", "loss", logy=True, height=height, markers=False)


def probe_fig(probe, x0, x1, w, v_star, vel, title: str = "", lim: float | None = 4.5,
              height: int = 460, scale: float = 0.25) -> go.Figure:
    """The pairs through one point: lines x0_k -> x1_k (K, 2) shaded by weight w (K,), their
    velocities ``vel`` (K, 2) drawn from the probe, and the weighted average ``v_star`` (2,)."""
    p, x0, x1, w, vel, v = (_np(a) for a in (probe, x0, x1, w, vel, v_star))
    fig = base(title, height, lim=lim)
    rel = w / max(w.max(), 1e-12)
    for lo, hi, alpha in ((0, 0.1, 0.15), (0.1, 0.4, 0.35), (0.4, 1.01, 0.8)):
        m = (rel >= lo) & (rel < hi)
        if m.any():
            xs, ys = _segments(x0[m], x1[m])
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip",
                                     name=f"lines, weight {lo:.0%}–{min(hi, 1):.0%}",
                                     line=dict(color=f"rgba(245,133,24,{alpha})", width=1.5)))
    fig.add_trace(go.Scatter(x=x1[:, 0], y=x1[:, 1], mode="markers", name="x1 (size = weight)",
                             marker=dict(size=3 + 9 * np.sqrt(rel), color=TARGET, opacity=0.8),
                             text=[f"w = {a:.4f}" for a in w]))
    pv = np.repeat(p[None], len(vel), 0)
    xs, ys = _segments(pv, pv + scale * vel)
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="directions x1 − x0",
                             line=dict(color="rgba(76,120,168,0.45)", width=1), hoverinfo="skip"))
    xs, ys = _segments(p[None], p[None] + scale * v[None])
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="weighted average = v*",
                             line=dict(color=ARROW, width=4)))
    for hx, hy in _arrow_heads(p[None], scale * v[None], 0.25):
        fig.add_trace(go.Scatter(x=hx, y=hy, mode="lines", showlegend=False,
                                 line=dict(color=ARROW, width=4), hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[p[0]], y=[p[1]], mode="markers", name="probe x",
                             marker=dict(size=12, color=ARROW, symbol="x")))
    return fig
