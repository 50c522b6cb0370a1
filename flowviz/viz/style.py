"""One look for every figure: colours, fonts, square 2-D axes."""

from __future__ import annotations

from functools import cache

import plotly.graph_objects as go
import plotly.io as pio

SOURCE = "#4C78A8"  # x0 (noise)
TARGET = "#E45756"  # x1 (data)
PATH = "#54A24B"  # trajectories
LINE = "rgba(120,120,120,0.35)"  # straight pair lines
ARROW = "#1f2937"
SEQ = ["#4C78A8", "#E45756", "#54A24B", "#B279A2", "#F58518", "#72B7B2", "#9D755D", "#EECA3B"]
FONT = dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=14)


@cache
def template() -> go.layout.Template:
    """plotly_white's layout and its defaults for the trace types drawn here: setting the whole
    template (all 24 trace types) costs ~0.3 s once and ~20 ms a figure."""
    white = pio.templates["plotly_white"]
    data = {k: v for k, v in white.data.to_plotly_json().items()
            if k in ("bar", "heatmap", "scatter", "scattergl")}
    return go.layout.Template(layout=white.layout, data=data)


def base(title: str = "", height: int = 460, square: bool = True, lim: float | None = None,
         xlabel: str = "", ylabel: str = "") -> go.Figure:
    fig = go.Figure()
    bottom = 90 if xlabel else 40
    # a horizontal legend a fixed distance (px) under the x axis, past its title at any height
    below = -(64 if xlabel else 36) / max(height - 50 - bottom, 1)
    fig.update_layout(template=template(), title=dict(text=title, x=0.01, font=dict(size=17)),
                      height=height, font=FONT, margin=dict(l=50, r=20, t=50, b=bottom),
                      legend=dict(orientation="h", yanchor="top", y=below, xanchor="left", x=0))
    fig.update_xaxes(title=xlabel, zeroline=False)
    fig.update_yaxes(title=ylabel, zeroline=False)
    if square:
        fig.update_yaxes(scaleanchor="x", scaleratio=1)
    if lim is not None:
        fig.update_xaxes(range=[-lim, lim])
        fig.update_yaxes(range=[-lim, lim])
    return fig
