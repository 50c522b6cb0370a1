"""Figures of the InstaFlow page draw exactly the numbers they are given."""

import numpy as np
import torch

from flowviz.viz.instaflow import conditioned_paths_fig, latency_fig, per_condition_fig


def test_per_condition_bars_floor_and_keep_raw_values():
    fig = per_condition_fig(["a", "b"], {"s1": [0.02, -0.001], "s2": [0.003, 0.5]}, rare=1,
                            floor=1e-4)
    assert [t.name for t in fig.data] == ["s1", "s2"]
    assert np.allclose(fig.data[0].y, [0.02, 1e-4]) and np.allclose(fig.data[0].customdata,
                                                                    [0.02, -0.001])
    assert "rare" in fig.data[0].x[1] and fig.layout.yaxis.type == "log"


def test_latency_axes_contain_every_point():
    rows = [("teacher", 1200.0, 0.005), ("student", 50.0, 0.0049), ("2-RF", 60.0, 0.014)]
    fig = latency_fig(rows)
    lo, hi = fig.layout.xaxis.range
    assert lo < np.log10(50) and hi > np.log10(1200)
    lo, hi = fig.layout.yaxis.range
    assert lo < np.log10(0.0049) and hi > np.log10(0.014)
    assert [t.name for t in fig.data] == ["teacher", "student", "2-RF"]


def test_paths_per_condition_start_and_end_where_the_paths_do():
    traj = torch.cumsum(torch.randn(6, 20, 2), 0)
    fig = conditioned_paths_fig({"E": traj, "W": traj + 1}, n_paths=5)
    assert len(fig.data) == 6  # per condition: paths, starts, ends
    assert np.allclose(fig.data[1].x, traj[0, :5, 0]) and np.allclose(fig.data[5].y,
                                                                      traj[-1, :5, 1] + 1)
