"""One look for every figure: one colour per method, fonts, square 2-D axes, decade log axes,
and distances below their sampling noise drawn as such."""

from __future__ import annotations

import math
import re
from functools import cache

import plotly.graph_objects as go
import plotly.io as pio

SOURCE = "#94A3B8"  # x0 (noise): slate, so it is never mistaken for a method
TARGET = "#E45756"  # x1 (data)
PATH = "#54A24B"  # trajectories
LINE = "rgba(120,120,120,0.35)"  # straight pair lines
ARROW = "#111827"  # the v* arrow: the exact field's colour
SEQ = ["#4C78A8", "#E45756", "#54A24B", "#B279A2", "#F58518", "#72B7B2", "#9D755D", "#EECA3B"]
# One colour per method on every page, chart and export (the method, not the order it was
# trained in, picks it). Two runs of one method share the colour and differ in dash.
METHOD_COLORS = {
    "exact": "#111827",  # the closed-form field v* (linear path)
    "diffusion": "#9D755D",  # VP diffusion's PF-ODE
    "1-RF": "#4C78A8",  # flow matching / 1-rectified flow, independent pairs
    "OT": "#72B7B2",  # 1-RF on minibatch-OT pairs
    "2-RF": "#54A24B",
    "3-RF": "#2D6A27",  # a darker 2-RF: one more round of the same idea
    "distilled": "#F58518",  # one-step student (2-RF + distill, InstaFlow)
    "Shortcut": "#B279A2",
    "MeanFlow": "#C99A06",
}
OTHER = "#6B7280"  # anything that is not one of the methods
# label patterns, most specific first ("2-RF + distill" is a distilled student, "exact VP
# PF-ODE" is diffusion)
_METHOD_PATTERNS = [
    ("MeanFlow", r"mean\s*flow"), ("Shortcut", r"shortcut"),
    ("distilled", r"distil|student|one-step 2-rf"), ("diffusion", r"diffusion|\bvp\b|pf-ode"),
    ("3-RF", r"3-rf|3-rectified"), ("2-RF", r"2-rf|2-rectified"),
    ("OT", r"\bot\b|optimal transport"), ("exact", r"exact|v\*|v⋆"),
    ("1-RF", r"1-rf|1-rectified|\bfm\b|flow matching|rectified flow"),
]
DASHES = ["solid", "dash", "dot", "dashdot", "longdash"]


def method_of(label: str) -> str | None:
    """The method a trace label names ('2-RF + distill · 800 steps' -> 'distilled'), or None."""
    low = label.lower()
    return next((m for m, pat in _METHOD_PATTERNS if re.search(pat, low)), None)


def method_color(label: str) -> str:
    """The fixed colour of the method a label names (OTHER when it names none)."""
    m = method_of(label)
    return METHOD_COLORS[m] if m else OTHER


def method_styles(labels) -> dict[str, dict]:
    """label -> plotly line dict: the method's colour, and a new dash for each further run of
    the same method (or of no method), so the colours never depend on order."""
    seen: dict[str, int] = {}
    out = {}
    for label in labels:
        c = method_color(label)
        k = seen[c] = seen.get(c, -1) + 1
        out[label] = dict(color=c, dash=DASHES[k % len(DASHES)])
    return out


SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def decade_label(v: float) -> str:
    """10⁻³, 2×10⁻³, 1, 20, ...: a log-axis tick as a reader says it."""
    e = math.floor(math.log10(v) + 1e-9)
    m = round(v / 10 ** e)
    if -1 <= e <= 2:
        return f"{v:g}"
    p = f"10{str(e).translate(SUPERSCRIPT)}"
    return p if m == 1 else f"{m}×{p}"


def decade_ticks(lo: float, hi: float) -> list[float]:
    """Tick values for a log axis over [lo, hi] (lo > 0): every decade; 1×, 2× and 5× when fewer
    than two decades fall inside; the two such ticks around a range narrower than that (so there
    are always at least two labelled ticks)."""
    e0, e1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))

    def inside(mult):
        ticks = [m * 10.0 ** e for e in range(e0, e1 + 1) for m in mult]
        return [t for t in ticks if lo * 0.999 <= t <= hi * 1.001]

    decades, fine = inside((1,)), inside((1, 2, 5))
    if len(decades) >= 2:
        return decades
    if len(fine) >= 2:
        return fine
    every = [m * 10.0 ** e for e in range(e0 - 1, e1 + 2) for m in (1, 2, 5)]
    return [max(t for t in every if t <= lo), min(t for t in every if t >= hi)]  # brackets


def log_axis(fig: go.Figure, axis: str = "y", lo: float | None = None,
             hi: float | None = None) -> go.Figure:
    """Make ``axis`` logarithmic, labelled in decades (10⁻³, 10⁻², ...), over [lo, hi] (default:
    the positive values its traces draw)."""
    vals = [float(v) for tr in fig.data if getattr(tr, axis, None) is not None
            for v in getattr(tr, axis) if _positive(v)]
    lo = lo if lo is not None else min(vals, default=1e-3)
    hi = hi if hi is not None else max(vals, default=1.0)
    hi = max(hi, lo * 1.01)
    ticks = decade_ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])  # a narrow range widens to two ticks
    upd = dict(type="log", tickvals=ticks, ticktext=[decade_label(t) for t in ticks],
               range=[math.log10(lo) - 0.05, math.log10(hi) + 0.05])
    (fig.update_yaxes if axis == "y" else fig.update_xaxes)(**upd)
    return fig


def _positive(v) -> bool:
    try:
        return math.isfinite(float(v)) and float(v) > 0
    except (TypeError, ValueError):
        return False


def format_distance(value: float, floor: float | None, digits: int = 4) -> str:
    """A distance as text: '≤ noise (−0.0013)' when it is below its sampling noise ``floor``
    (the spread of data-vs-data distances at the same size); never a bare negative number."""
    if floor is not None and value <= floor:
        return f"≤ noise ({value:.{digits}f})"
    return f"{value:.{digits}f}"


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
