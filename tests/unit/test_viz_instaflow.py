"""Figures of the InstaFlow page draw exactly the numbers they are given, in each method's
colour, with decade log axes and distances below their noise shown as such."""

import math

import numpy as np
import torch

from flowviz.viz.instaflow import conditioned_paths_fig, latency_fig, per_condition_fig
from flowviz.viz.style import METHOD_COLORS


def test_per_condition_bars_keep_raw_values_and_mark_the_noise():
    fig = per_condition_fig(["a", "b"], {"2-RF (1 step)": [0.02, -0.001],
                                         "2-RF + distill": [0.003, 0.5]}, rare=1, floor=0.002)
    bars = [t for t in fig.data if t.type == "bar"]
    assert [t.name for t in bars] == ["2-RF (1 step)", "2-RF + distill"]
    # below the noise: drawn on the band's lower edge (floor / 4), the value kept in the hover
    assert np.allclose(bars[0].y, [0.02, 0.0005]) and np.allclose(bars[0].customdata,
                                                                 [0.02, -0.001])
    assert list(bars[0].text) == ["0.0200", "≤ noise (-0.0010)"]
    assert "rare" in bars[0].x[1] and fig.layout.yaxis.type == "log"
    assert [b.marker.color for b in bars] == [METHOD_COLORS["2-RF"], METHOD_COLORS["distilled"]]
    band = fig.layout.shapes[0]
    assert math.isclose(band.y0, 0.0005) and math.isclose(band.y1, 0.002)


def test_two_stages_of_one_method_share_its_colour_and_differ_in_pattern():
    fig = per_condition_fig(["a"], {"2-RF + distill": [0.01], "teacher + distill": [0.02]})
    a, b = fig.data
    assert a.marker.color == b.marker.color == METHOD_COLORS["distilled"]
    assert a.marker.pattern.shape != b.marker.pattern.shape


def test_latency_axes_are_decades_and_contain_every_point():
    rows = [("teacher · exact VP PF-ODE", 1200.0, 0.005), ("2-RF + distill · 1 step", 50.0,
                                                            0.0049), ("2-RF · 1 step", 60.0, 0.014)]
    fig = latency_fig(rows)
    lo, hi = fig.layout.xaxis.range
    assert lo < np.log10(50) and hi > np.log10(1200)
    lo, hi = fig.layout.yaxis.range
    assert lo < np.log10(0.0049) and hi > np.log10(0.014)
    assert list(fig.layout.xaxis.ticktext) == ["10", "100", "10³"]
    for v in fig.layout.xaxis.tickvals:  # decades only: no "2 5 100 2"
        assert math.isclose(math.log10(v), round(math.log10(v)))
    assert list(fig.layout.yaxis.ticktext) == ["10⁻³", "10⁻²"]  # two labelled ticks at least
    assert [t.name for t in fig.data] == [r[0] for r in rows]
    assert [t.marker.color for t in fig.data] == [METHOD_COLORS[m] for m in
                                                  ("diffusion", "distilled", "2-RF")]


def test_paths_per_condition_start_and_end_where_the_paths_do():
    traj = torch.cumsum(torch.randn(6, 20, 2), 0)
    fig = conditioned_paths_fig({"E": traj, "W": traj + 1}, n_paths=5)
    assert len(fig.data) == 6  # per condition: paths, starts, ends
    assert np.allclose(fig.data[1].x, traj[0, :5, 0]) and np.allclose(fig.data[5].y,
                                                                      traj[-1, :5, 1] + 1)
