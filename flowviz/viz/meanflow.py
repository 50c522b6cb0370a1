"""Figures of the MeanFlow page (article §6): the chord against the curve, the running average of
v, (t, r) maps and per-point error maps. Pure functions: arrays in, plotly figures out."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from .figures import _arrow_heads, _np, _segments, heatmap_fig, scatter
from .style import LINE, METHOD_COLORS, PATH, SOURCE, TARGET, base, log_axis, method_color

MEAN = "#D946EF"  # the mean velocity u and its chord: no method's colour
INST = METHOD_COLORS["exact"]  # the instantaneous velocity v: the exact field's colour
MODEL = method_color("MeanFlow")  # a trained u_θ: the MeanFlow colour of every page
BAR_TITLE = dict(title=dict(side="right"))  # a colour-bar title beside its ticks, not over them


def _arrow(fig, p, d, name, color, width=3.0, dash=None, head=0.18):
    xs, ys = _segments(p[None], (p + d)[None])
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=name,
                             line=dict(color=color, width=width, dash=dash)))
    for hx, hy in _arrow_heads(p[None], d[None], head):
        fig.add_trace(go.Scatter(x=hx, y=hy, mode="lines", showlegend=False, hoverinfo="skip",
                                 line=dict(color=color, width=width)))


def chord_fig(traj, ts, i: int, j: int, v_t, data=None, model_ends=None, fan: int = 8,
              title: str = "", lim: float | None = 4.5, height: int = 500) -> go.Figure:
    """One trajectory traj (T, 2) of v on times ts (T,), the point x_t = traj[i] and x_r =
    traj[j]: the curve, a fan of chords x_t -> x_r' (r' > t), the chord to x_r (the jump (r - t)
    u), and one step of v, x_t + (r - t) v_t. ``model_ends`` (T, 2): a model's jumps x_t + (r' -
    t) u_θ(x_t, t, r') for r' = ts[k], k >= i (NaN elsewhere)."""
    tr, ts, v = _np(traj), _np(ts), _np(v_t)
    fig = base(title, height, lim=lim)
    if data is not None:
        scatter(fig, data, "data", TARGET, 3, 0.18)
    fig.add_trace(go.Scatter(x=tr[:, 0], y=tr[:, 1], mode="lines", name="path of v",
                             line=dict(color=PATH, width=3)))
    ks = np.unique(np.linspace(i + 1, len(ts) - 1, fan).round().astype(int)) if i + 1 < len(ts) \
        else np.array([], int)
    if len(ks):
        xs, ys = _segments(np.repeat(tr[i][None], len(ks), 0), tr[ks])
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="chords x_t → x_r′",
                                 line=dict(color=LINE, width=1.5), hoverinfo="skip"))
    h = ts[j] - ts[i]
    if j > i:
        _arrow(fig, tr[i], tr[j] - tr[i], "jump (r − t)·u", MEAN, 4)
        _arrow(fig, tr[i], h * v, "step (r − t)·v", INST, 3, "dot")
    if model_ends is not None:
        me = _np(model_ends)
        fig.add_trace(go.Scatter(x=me[:, 0], y=me[:, 1], mode="lines", name="u_θ jumps",
                                 line=dict(color=MODEL, width=2.5, dash="dash")))
        if j > i:
            fig.add_trace(go.Scatter(x=[me[j, 0]], y=[me[j, 1]], mode="markers",
                                     name="u_θ jump to x_r", marker=dict(size=11, color=MODEL,
                                                                       symbol="diamond")))
    fig.add_trace(go.Scatter(x=[tr[i, 0], tr[j, 0]], y=[tr[i, 1], tr[j, 1]], mode="markers+text",
                             text=["x_t", "x_r"], textposition="top center", name="x_t, x_r",
                             marker=dict(size=11, color="#111827"), showlegend=False))
    scatter(fig, tr[:1], "start x0", SOURCE, 9, 1.0)
    fig.update_layout(legend=dict(entrywidth=0.5, entrywidthmode="fraction"))  # two a row
    return fig


def running_mean_fig(v_path, u_row, i: int, j: int, model_row=None, title: str = "",
                     height: int = 500, extra: dict | None = None) -> go.Figure:
    """Velocity space: v(x_τ, τ) for τ >= t (the instantaneous velocities met on the way) and
    its running average u(x_t, t, r′) for r′ >= t, both (T, 2) with rows < i unused. u starts at
    v(x_t, t) (r′ = t) and is the mean of the v curve up to r′. ``model_row``: u_θ(x_t, t, r′);
    ``extra``: more rows (T, 2) by label, e.g. a shortcut model's s(x_t, t, r′ − t)."""
    v, u = _np(v_path)[i:], _np(u_row)[i:]
    fig = base(title, height, xlabel="velocity x-component", ylabel="velocity y-component")
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    fig.add_trace(go.Scatter(x=v[:, 0], y=v[:, 1], mode="lines", name="v(x_τ, τ), τ ≥ t",
                             line=dict(color=INST, width=2.5)))
    fig.add_trace(go.Scatter(x=u[:, 0], y=u[:, 1], mode="lines",
                             name="u(x_t, t, r′), r′ ≥ t", line=dict(color=MEAN, width=4)))
    if model_row is not None:
        m = _np(model_row)[i:]
        fig.add_trace(go.Scatter(x=m[:, 0], y=m[:, 1], mode="lines", name="u_θ(x_t, t, r′)",
                                 line=dict(color=MODEL, width=2.5, dash="dash")))
    for label, row in (extra or {}).items():  # e.g. a Shortcut model, in its method's colour
        m = _np(row)[i:]
        fig.add_trace(go.Scatter(x=m[:, 0], y=m[:, 1], mode="lines", name=label,
                                 line=dict(color=method_color(label), width=2.5, dash="dot")))
    fig.add_trace(go.Scatter(x=[u[0, 0]], y=[u[0, 1]], mode="markers",
                             name="r′ = t: u = v",
                             marker=dict(size=12, color=INST, symbol="circle")))
    fig.add_trace(go.Scatter(x=[u[j - i, 0]], y=[u[j - i, 1]], mode="markers",
                             name="u at the chosen r",
                             marker=dict(size=13, color=MEAN, symbol="star")))
    fig.update_layout(legend=dict(entrywidth=0.5, entrywidthmode="fraction"))  # two a row
    return fig


def tr_map_fig(ts, z, title: str = "", name: str = "", mark=None, height: int = 430,
               colorscale: str = "Viridis", zmax=None) -> go.Figure:
    """A map over the (t, r) plane, r >= t: z (T, T) indexed [t, r] (NaN where undefined), drawn
    with t across and r up. ``mark``: (t, r) of a point to highlight."""
    ts, z = _np(ts), _np(z)
    fig = heatmap_fig(ts, ts, z.T, title, name, lim=None, height=height, colorscale=colorscale,
                      zmax=zmax)
    fig.update_traces(colorbar=BAR_TITLE, selector=dict(type="heatmap"))
    fig.update_xaxes(title="t (start)", range=[ts[0], ts[-1]])
    fig.update_yaxes(title="r (end)", range=[ts[0], ts[-1]], scaleanchor="x", scaleratio=1)
    fig.add_trace(go.Scatter(x=[ts[0], ts[-1]], y=[ts[0], ts[-1]], mode="lines", name="r = t",
                             line=dict(color="gray", dash="dot"), showlegend=False))
    if mark is not None:
        fig.add_trace(go.Scatter(x=[mark[0]], y=[mark[1]], mode="markers", name="chosen (t, r)",
                                 showlegend=False,  # named in the caption: no legend box
                                 marker=dict(size=13, color="white", symbol="x",
                                             line=dict(color="black", width=1))))
    return fig


def error_points_fig(x, err, title: str = "", name: str = "error", lim: float | None = 4.5,
                     height: int = 460, colorscale: str = "Magma", cmax=None) -> go.Figure:
    """Points x (N, 2) coloured by a per-point error err (N,)."""
    x, e = _np(x), _np(err)
    fig = base(title, height, lim=lim)
    fig.add_trace(go.Scattergl(x=x[:, 0], y=x[:, 1], mode="markers", name=name,
                               marker=dict(size=6, color=e, colorscale=colorscale, cmin=0,
                                           cmax=cmax,
                                           colorbar=dict(thickness=12, title=dict(
                                               text=name, side="right"))),
                               text=[f"{a:.3f}" for a in e]))
    return fig


def jumps_fig(x0, ends: dict, data=None, title: str = "", n_lines: int = 80,
              lim: float | None = 4.5, height: int = 460) -> go.Figure:
    """One-step jumps from the same noise x0 (N, 2): ends maps a label to the landing points
    (N, 2); the first n_lines jumps of each are drawn as segments, coloured by what they follow
    (a trained u_θ in the MeanFlow colour, the exact u* as the chord, v as the tangent)."""
    x0 = _np(x0)
    fig = base(title, height, lim=lim)
    if data is not None:
        scatter(fig, data, "data", TARGET, 3, 0.2)
    for label, e in ends.items():
        e = _np(e)
        c = MODEL if "θ" in label else MEAN if "u*" in label else INST
        xs, ys = _segments(x0[:n_lines], e[:n_lines])
        fig.add_trace(go.Scattergl(x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
                                   line=dict(color=c, width=0.8)))
        scatter(fig, e, label, c, 4, 0.8)
    scatter(fig, x0[:n_lines], "noise x0", SOURCE, 4, 0.8)
    return fig


def bucket_loss_fig(steps, losses: dict, title: str = "", height: int = 380) -> go.Figure:
    """losses: time-bucket label -> loss per logged step, one line per bucket from early t (dark)
    to late t (light), on a log axis in decades, the legend beside the plot."""
    fig = base(title, height, square=False, xlabel="step", ylabel="‖Δ‖²")
    cols = sample_colorscale("Viridis", [0.9 * k / max(1, len(losses) - 1)
                                         for k in range(len(losses))])
    for (label, y), c in zip(losses.items(), cols, strict=True):
        fig.add_trace(go.Scatter(x=_np(steps), y=_np(y), mode="lines", name=label,
                                 line=dict(color=c, width=2)))
    fig.update_layout(legend=dict(orientation="v", yanchor="top", y=1, xanchor="left", x=1.02),
                      margin=dict(r=130))
    return log_axis(fig, "y")
