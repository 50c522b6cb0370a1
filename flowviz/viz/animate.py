"""Samples flowing along an ODE, as an animated GIF (matplotlib draws, Pillow encodes).

One frame per time of the trajectory (T, N, 2): the points x_t coloured from source blue to
data red as t runs from 0 to 1, with the path behind each point drawn as a faint trail.
"""

from __future__ import annotations

import io
import textwrap

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from PIL import Image

from .style import PATH, SOURCE, TARGET


def _np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def trajectory_gif(traj, ts=None, title: str = "", lim: float | None = 4.5, n_paths: int = 300,
                   size: int = 480, frame_ms: int = 60, hold_ms: int = 1500,
                   background=None) -> bytes:
    """GIF bytes of ``traj`` (T, N, 2): frame k shows x at time ``ts[k]`` (default k / (T-1)).

    The last frame is held ``hold_ms`` so a looping slide pauses on the samples. ``background``
    (M, 2): e.g. data points, drawn faintly under the flow."""
    tr = _np(traj)[:, :n_paths].astype(float)
    T = len(tr)
    ts = np.linspace(0, 1, T) if ts is None else _np(ts).astype(float)
    if lim is None:
        lim = float(np.nanmax(np.abs(tr))) * 1.05
    dpi = 100
    # Figure + Agg canvas, not pyplot: safe in Streamlit's download threads
    fig = Figure(figsize=(size / dpi, size / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[])
    for s in ax.spines.values():
        s.set_color("#d1d5db")
    if background is not None:
        b = _np(background)
        ax.scatter(b[:, 0], b[:, 1], s=4, c="#9ca3af", alpha=0.25, lw=0)
    trails = LineCollection([], colors=PATH, linewidths=0.7, alpha=0.35)
    ax.add_collection(trails)
    pts = ax.scatter(tr[0, :, 0], tr[0, :, 1], s=10, lw=0)
    if title:  # the chart's title, wrapped to the frame's width
        ax.set_title(textwrap.fill(title, width=size // 9), fontsize=11, color="#374151")
    label = ax.text(0.03, 0.97, "t = 0.00", transform=ax.transAxes, fontsize=15, va="top",
                    fontweight="bold", color="#111827")
    fig.tight_layout()
    c0, c1 = np.array(to_rgb(SOURCE)), np.array(to_rgb(TARGET))
    frames = []
    for k in range(T):
        trails.set_segments(list(tr[: k + 1].transpose(1, 0, 2)) if k else [])
        pts.set_offsets(tr[k])
        pts.set_color((1 - ts[k]) * c0 + ts[k] * c1)
        label.set_text(f"t = {ts[k]:.2f}")
        fig.canvas.draw()
        rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
        frames.append(Image.fromarray(rgb).quantize(colors=64, method=Image.Quantize.MEDIANCUT))
    buf = io.BytesIO()
    durations = [frame_ms] * (T - 1) + [hold_ms]
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                   duration=durations, optimize=False, disposal=1)
    return buf.getvalue()
