"""Exports: static images decode at the right size, SVG parses, CSV gives back the trace data,
NPZ round-trips, the GIF has one frame per trajectory time."""

import csv
import io
import xml.etree.ElementTree as ET

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from PIL import Image

from flowviz.viz import export
from flowviz.viz.animate import trajectory_gif
from flowviz.viz.figures import heatmap_fig, pair_lines_fig


def _fig():
    fig = go.Figure(go.Scatter(x=[0.0, 1.5, None, 3.0], y=[1.0, -2.0, None, 0.25], name="a"))
    fig.add_trace(go.Scattergl(x=np.arange(5.0), y=np.arange(5.0) ** 2, name="b"))
    fig.update_layout(height=300, width=400)
    return fig


@pytest.mark.skipif(not __import__("shutil").which("chromium"), reason="kaleido needs Chromium")
def test_png_and_svg():
    fig = _fig()
    png = Image.open(io.BytesIO(export.image_bytes(fig, "png")))
    assert png.format == "PNG" and png.size == (400 * export.SCALE, 300 * export.SCALE)
    root = ET.fromstring(export.image_bytes(fig, "svg"))
    assert root.tag.endswith("svg") and float(root.get("width")) == 400
    with pytest.raises(ValueError):
        export.image_bytes(fig, "gif")


def test_export_size_square_axes():
    fig = pair_lines_fig(torch.zeros(3, 2), torch.ones(3, 2), height=400)
    w, h = export.export_size(fig)
    assert h == 400 and w > h  # room for the legend/colorbar beside a square plot


def _read(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_round_trips_scatter_traces():
    fig = _fig()
    rows = _read(export.figure_csv(fig))
    for k, tr in enumerate(fig.data):
        got = [r for r in rows if r["trace"] == str(k)]
        assert [r["name"] for r in got] == [tr.name] * len(tr.x)
        x = np.array([float(r["x"]) if r["x"] else np.nan for r in got])
        y = np.array([float(r["y"]) if r["y"] else np.nan for r in got])
        want_x = np.array([np.nan if v is None else v for v in tr.x], dtype=float)
        want_y = np.array([np.nan if v is None else v for v in tr.y], dtype=float)
        np.testing.assert_array_equal(x, want_x)  # NaN gaps stay gaps
        np.testing.assert_array_equal(y, want_y)


def test_csv_heatmap_gives_grid_cells():
    xs, ys = np.linspace(-1, 1, 3), np.linspace(0, 2, 4)
    z = np.arange(12.0).reshape(4, 3)
    rows = _read(export.figure_csv(heatmap_fig(xs, ys, z)))
    assert len(rows) == 12
    for r in rows:  # each cell: z at (x, y)
        i, j = list(ys).index(float(r["y"])), list(xs).index(float(r["x"]))
        assert float(r["z"]) == z[i, j]


def test_npz_round_trip():
    a = torch.randn(4, 3, 2)
    back = np.load(io.BytesIO(export.npz_bytes({"traj": a, "ts": np.linspace(0, 1, 4)})))
    np.testing.assert_array_equal(back["traj"], a.numpy())
    assert back["ts"].shape == (4,)


def test_gif_has_one_frame_per_time():
    T = 7
    ts = torch.linspace(0, 1, T)
    traj = torch.randn(1, 20, 2) + ts[:, None, None] * torch.tensor([2.0, 0.0])
    im = Image.open(io.BytesIO(trajectory_gif(traj, ts, size=160)))
    assert im.format == "GIF" and im.n_frames == T and im.size == (160, 160)
    # the points move: first and last frames differ
    im.seek(0)
    f0 = np.asarray(im.convert("RGB"))
    im.seek(T - 1)
    assert np.abs(np.asarray(im.convert("RGB")).astype(int) - f0).sum() > 0
