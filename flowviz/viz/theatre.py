"""The flow theatre as plotly figures: every method's points moving from the same noise, played
in the browser (animation frames, a time slider: no server round trip per frame), and one
particle followed under every method."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..theatre import Particle, positions, visited
from .style import FONT, OTHER, method_color, template

FRAME_MS = 40  # 25 frames/s while playing
IN_FLIGHT = 0.45  # opacity of points between two states the sampler computed (a drawing)


def _layout(flights: dict, overlay: bool) -> tuple[int, int]:
    n = 1 if overlay else len(flights)
    cols = min(3, n)
    return math.ceil(n / cols), cols


def theatre_fig(flights: dict, times: np.ndarray, overlay: bool = False, data=None,
                lim: float = 3.0, panel: int = 330, gl: bool = False,
                frame_ms: int = FRAME_MS) -> go.Figure:
    """The same noise under every flight, one frame per time in ``times``: small multiples (one
    panel per method) or ``overlay`` (one panel). Points are solid at the states their sampler
    computed and faint in between, where they are drawn moving straight along the step.
    ``data`` (M, 2): drawn faintly under the points. ``gl``: WebGL points (Scattergl)."""
    rows, cols = _layout(flights, overlay)
    titles = None if overlay else [f"{f.label} · {f.how}" for f in flights.values()]
    fig = make_subplots(rows, cols, subplot_titles=titles, horizontal_spacing=0.04,
                        vertical_spacing=0.1 if rows > 1 else 0)
    Scatter = go.Scattergl if gl else go.Scatter
    moving, pos, seen = [], {}, {}
    for j, (key, f) in enumerate(flights.items()):
        cell = dict(row=1, col=1) if overlay else dict(row=j // cols + 1, col=j % cols + 1)
        if data is not None and (j == 0 or not overlay):
            d = np.asarray(data, dtype=np.float32)
            fig.add_trace(Scatter(x=d[:, 0], y=d[:, 1], mode="markers", name="data",
                                  showlegend=False, hoverinfo="skip",
                                  marker=dict(size=3, color=OTHER, opacity=0.18)), **cell)
        pos[key] = positions(f, times).astype(np.float32)
        seen[key] = visited(f, times)
        moving.append(len(fig.data))
        fig.add_trace(Scatter(x=pos[key][0, :, 0], y=pos[key][0, :, 1], mode="markers",
                              name=f.label, showlegend=overlay,
                              customdata=np.arange(pos[key].shape[1]),
                              hovertemplate=f"{f.label}<br>noise point %{{customdata}}"
                                            "<extra></extra>",
                              marker=dict(size=4, color=method_color(f.label), opacity=1.0)),
                      **cell)
    frames = [{"name": f"{t:.4f}", "traces": moving, "data": [
        {"type": "scattergl" if gl else "scatter", "x": pos[k][i, :, 0], "y": pos[k][i, :, 1],
         "marker": {"opacity": 1.0 if seen[k][i] else IN_FLIGHT}} for k in flights]}
        for i, t in enumerate(times)]
    step = dict(frame=dict(duration=0, redraw=gl), mode="immediate",
                transition=dict(duration=0))
    play = dict(frame=dict(duration=frame_ms, redraw=gl), fromcurrent=True,
                transition=dict(duration=0), mode="immediate")
    height = rows * panel + 130
    fig.update_layout(
        template=template(), font=FONT, height=height, margin=dict(l=10, r=10, t=40, b=90),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
        updatemenus=[dict(type="buttons", direction="left", x=0, y=0, xanchor="left",
                          yanchor="top", pad=dict(t=45, r=10), showactive=False, buttons=[
                              dict(label="▶ Play", method="animate", args=[None, play]),
                              dict(label="❚❚ Pause", method="animate",
                                   args=[[None], dict(step, frame=dict(duration=0,
                                                                       redraw=False))])])],
        sliders=[dict(active=0, x=0.16, len=0.84, y=0, yanchor="top", pad=dict(t=30),
                      currentvalue=dict(prefix="t = ", font=dict(size=15)),
                      steps=[dict(label=f"{t:.2f}", method="animate",
                                  args=[[f"{t:.4f}"], step]) for t in times])])
    fig.update_xaxes(range=[-lim, lim], showticklabels=False, zeroline=False, showgrid=False,
                     constrain="domain")
    fig.update_yaxes(range=[-lim, lim], showticklabels=False, zeroline=False, showgrid=False,
                     constrain="domain")
    for j in range(rows * cols):  # square panels
        fig.update_yaxes(scaleanchor=f"x{j + 1 if j else ''}", scaleratio=1, row=j // cols + 1,
                         col=j % cols + 1)
    # the frames are plain dicts, already valid: validating ~60 x 6 traces took ~1 s
    return go.Figure({"data": fig.data, "layout": fig.layout, "frames": frames},
                     _validate=False)


def particle_fig(particles: dict[str, Particle], labels: dict[str, str], t: float,
                 data=None, lim: float = 3.0, density=None, height: int = 520) -> go.Figure:
    """One noise point under every method: the visited states joined (its path), where it is
    at t (a dot), its tangent there (an arrow), its chord to its endpoint (dotted) and, for
    Shortcut and MeanFlow, the jump the model would make from there (dashed).
    ``density``: (grid, p) of the exact p_t, shaded underneath."""
    fig = go.Figure()
    if density is not None:
        g, p = density
        fig.add_trace(go.Heatmap(x=g, y=g, z=p, colorscale="Greys", showscale=False,
                                 opacity=0.5, hoverinfo="skip"))
    if data is not None:
        d = np.asarray(data)
        fig.add_trace(go.Scatter(x=d[:, 0], y=d[:, 1], mode="markers", name="data",
                                 hoverinfo="skip", marker=dict(size=3, color=OTHER, opacity=0.2)))
    scale = 0.25  # the tangent arrow: v over a quarter of the time
    for key, p in particles.items():
        c, name = method_color(labels[key]), labels[key]
        fig.add_trace(go.Scatter(x=p.path[:, 0], y=p.path[:, 1], mode="lines+markers",
                                 name=name, legendgroup=key, line=dict(color=c, width=2),
                                 marker=dict(size=5, color=c)))
        fig.add_trace(go.Scatter(x=[p.x[0], p.end[0]], y=[p.x[1], p.end[1]], mode="lines",
                                 legendgroup=key, showlegend=False, hoverinfo="skip",
                                 line=dict(color=c, width=1, dash="dot")))
        if p.jump is not None:
            fig.add_trace(go.Scatter(x=[p.x[0], p.jump[0]], y=[p.x[1], p.jump[1]],
                                     mode="lines+markers", legendgroup=key, showlegend=False,
                                     name=f"{name} jump", line=dict(color=c, width=2, dash="dash"),
                                     marker=dict(symbol="x", size=9, color=c)))
        fig.add_annotation(x=p.x[0] + scale * p.tangent[0], y=p.x[1] + scale * p.tangent[1],
                           ax=p.x[0], ay=p.x[1], xref="x", yref="y", axref="x", ayref="y",
                           showarrow=True, arrowhead=2, arrowwidth=2, arrowcolor=c, text="")
        fig.add_trace(go.Scatter(x=[p.x[0]], y=[p.x[1]], mode="markers", legendgroup=key,
                                 showlegend=False, marker=dict(size=11, color=c,
                                                               line=dict(color="white", width=1))))
    fig.update_layout(template=template(), font=FONT, height=height,
                      title=dict(text=f"One noise point under every method, at t = {t:.2f}",
                                 x=0.01, font=dict(size=17)),
                      margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(orientation="v", x=1.01, y=1, xanchor="left"))
    fig.update_xaxes(range=[-lim, lim], zeroline=False, constrain="domain")
    fig.update_yaxes(range=[-lim, lim], zeroline=False, scaleanchor="x", scaleratio=1,
                     constrain="domain")
    return fig


def theatre_gif(flights: dict, times: np.ndarray, data=None, lim: float = 3.0,
                panel: int = 260, frame_ms: int = FRAME_MS, hold_ms: int = 1500) -> bytes:
    """The theatre as an animated GIF: one panel per method in its colour, one frame per time
    (matplotlib draws, Pillow encodes, as flowviz.viz.animate does for one flow)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    rows, cols = _layout(flights, False)
    fig = Figure(figsize=(cols * panel / 100, rows * panel / 100 + 0.4), dpi=100)
    FigureCanvasAgg(fig)
    dots, seen = [], []
    for j, f in enumerate(flights.values()):
        ax = fig.add_subplot(rows, cols, j + 1)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[])
        ax.set_title(f"{f.label}\n{f.how}", fontsize=9, color="#374151")
        if data is not None:
            d = np.asarray(data)
            ax.scatter(d[:, 0], d[:, 1], s=2, c=OTHER, alpha=0.2, lw=0)
        p = positions(f, times)
        dots.append((ax.scatter(p[0, :, 0], p[0, :, 1], s=5, c=method_color(f.label), lw=0), p))
        seen.append(visited(f, times))
    clock = fig.text(0.01, 0.99, "", fontsize=13, fontweight="bold", va="top")
    fig.tight_layout(rect=(0, 0, 1, 0.95), h_pad=2.0)
    frames = []
    for i, t in enumerate(times):
        for (dot, p), v in zip(dots, seen, strict=True):
            dot.set_offsets(p[i])
            dot.set_alpha(1.0 if v[i] else IN_FLIGHT)
        clock.set_text(f"t = {t:.2f}")
        fig.canvas.draw()
        rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
        frames.append(Image.fromarray(rgb).quantize(colors=64, method=Image.Quantize.MEDIANCUT))
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                   duration=[frame_ms] * (len(frames) - 1) + [hold_ms], disposal=1)
    return buf.getvalue()
