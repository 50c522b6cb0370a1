"""flowviz.viz: every builder returns a plotly Figure whose traces carry the input geometry."""

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from flowviz import viz

G = torch.Generator().manual_seed(0)
X0 = torch.randn(12, 2, generator=G)
X1 = torch.randn(12, 2, generator=G) + 2


def segments(trace):
    """(p0, p1) arrays back from a None/NaN-separated polyline trace."""
    x, y = np.asarray(trace.x, float), np.asarray(trace.y, float)
    return np.stack([x[0::3], y[0::3]], 1), np.stack([x[1::3], y[1::3]], 1)


def test_scatter_and_clouds():
    fig = viz.clouds_fig({"a": X0, "b": X1.numpy(), "c": X1.tolist()}, title="t")
    assert isinstance(fig, go.Figure) and len(fig.data) == 3
    assert [tr.name for tr in fig.data] == ["a", "b", "c"]
    assert all(tr.mode == "markers" for tr in fig.data)
    assert np.allclose(fig.data[0].x, X0[:, 0].numpy()) and np.allclose(fig.data[1].y, X1[:, 1])
    assert fig.data[0].marker.color != fig.data[1].marker.color
    assert fig.layout.xaxis.range == (-4.5, 4.5)


def test_pair_lines_fig():
    fig = viz.pair_lines_fig(X0, X1, n_lines=10)
    assert len(fig.data) == 3  # lines, x0, x1
    p0, p1 = segments(fig.data[0])
    assert np.allclose(p0, X0[:10].numpy()) and np.allclose(p1, X1[:10].numpy())
    assert len(fig.data[1].x) == 10 and len(fig.data[2].x) == 10
    mask = torch.zeros(12, dtype=torch.bool)
    mask[[2, 5]] = True
    fig = viz.pair_lines_fig(X0, X1, highlight=mask)
    assert len(fig.data) == 4
    h0, h1 = segments(fig.data[1])
    assert np.allclose(h0, X0[[2, 5]].numpy()) and np.allclose(h1, X1[[2, 5]].numpy())


@pytest.mark.parametrize("with_heat", [False, True])
def test_field_fig_arrows_point_along_the_vectors(with_heat):
    xs = torch.linspace(-2, 2, 5)
    yy, xx = torch.meshgrid(xs, xs, indexing="ij")
    pts = torch.stack([xx.flatten(), yy.flatten()], 1)
    vec = torch.stack([-pts[:, 1], pts[:, 0]], 1) * 10  # long rotation arrows: get capped
    vec[12] = 0  # the centre has a zero vector: must not crash
    heat = (xs, xs, torch.rand(5, 5, generator=G)) if with_heat else None
    fig = viz.field_fig(pts, vec, heat=heat, heat_name="speed")
    kinds = [type(tr).__name__ for tr in fig.data]
    assert kinds == (["Heatmap"] if with_heat else []) + ["Scattergl"] * 3  # shafts + 2 barbs
    shaft = fig.data[1 if with_heat else 0]
    p0, p1 = segments(shaft)
    assert np.allclose(p0, pts.numpy())
    d, v = p1 - p0, vec.numpy()
    nz = np.linalg.norm(v, axis=1) > 0
    # same direction as the vector (positive multiple), shorter than the grid spacing x 0.9
    cross = d[nz, 0] * v[nz, 1] - d[nz, 1] * v[nz, 0]
    assert np.allclose(cross, 0, atol=1e-5) and ((d[nz] * v[nz]).sum(1) > 0).all()
    assert np.linalg.norm(d, axis=1).max() <= 0.9 * 1.0 + 1e-6
    assert np.allclose(d[~nz], 0)
    # short arrows are drawn to scale (display = scale * velocity), not capped
    fig = viz.field_fig(pts, vec * 1e-3, scale=0.5)
    q0, q1 = segments(fig.data[0])
    assert np.allclose(q1 - q0, 0.5 * vec.numpy() * 1e-3, atol=1e-7)


@pytest.mark.parametrize("chords", [True, False])
def test_trajectories_fig(chords):
    traj = torch.cumsum(torch.randn(6, 4, 2, generator=G), 0)  # (T, N, 2)
    fig = viz.trajectories_fig(traj, chords=chords)
    assert len(fig.data) == (4 if chords else 3)  # [chords], paths, start, end
    paths = fig.data[1 if chords else 0]
    xy = np.stack([np.asarray(paths.x, float), np.asarray(paths.y, float)], 1)
    polys = xy.reshape(4, 7, 2)  # each path: T points then a NaN break
    assert np.isnan(polys[:, -1]).all()
    assert np.allclose(polys[:, :-1], traj.numpy().transpose(1, 0, 2))
    start, end = fig.data[-2], fig.data[-1]
    assert np.allclose(start.x, traj[0, :, 0]) and np.allclose(end.y, traj[-1, :, 1])
    if chords:
        c0, c1 = segments(fig.data[0])
        assert np.allclose(c0, traj[0].numpy()) and np.allclose(c1, traj[-1].numpy())
    # n_paths truncates; drawing onto an existing figure appends
    fig2 = viz.trajectories_fig(traj, n_paths=2, chords=False, fig=fig, name="other")
    assert fig2 is fig and len(fig.data) == (7 if chords else 6)
    assert fig.data[-3].name == "other" and len(fig.data[-1].x) == 2


def test_heatmap_curves_quality_loss():
    z = torch.rand(3, 4, generator=G)
    fig = viz.heatmap_fig(torch.arange(4), torch.arange(3), z, name="v")
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Heatmap)
    assert np.allclose(fig.data[0].z, z.numpy())
    curves = {"euler": ([1, 2, 4], torch.tensor([0.5, 0.2, 0.1])), "rk4": ([4], [0.05])}
    fig = viz.curves_fig(curves, logx=True, hlines={"floor": 0.01})
    assert len(fig.data) == 2 and [t.name for t in fig.data] == ["euler", "rk4"]
    assert fig.layout.xaxis.type == "log" and len(fig.layout.shapes) == 1
    fig = viz.quality_vs_nfe_fig(curves)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert list(fig.data[0].x) == [1, 2, 4]
    hist = [{"step": 10, "loss": 2.0, "mse": 1.0}, {"step": 20, "loss": 1.0, "mse": 0.5}]
    fig = viz.loss_fig(hist, keys=("loss", "mse", "absent"))
    assert [t.name for t in fig.data] == ["loss", "mse"] and list(fig.data[0].x) == [10, 20]
    assert len(viz.loss_fig([]).data) == 0


def test_probe_fig():
    from flowviz.exact import ExactField

    data = torch.tensor([[2.0, 1.0], [-1.5, 2.0], [0.0, -2.5]])
    f = ExactField(data)
    p = torch.tensor([0.3, 0.2])
    w, x0, x1 = f.pairs_through(p, 0.5)
    vel = x1 - x0
    fig = viz.probe_fig(p, x0, x1, w, f(p[None], 0.5)[0], vel)
    assert isinstance(fig, go.Figure)
    names = [tr.name for tr in fig.data]
    assert names[-1] == "probe x" and "weighted average = v*" in names
    assert list(fig.data[-1].x) == [pytest.approx(0.3)]
    n_line_groups = sum(1 for n in names if n and n.startswith("lines, weight"))
    assert 1 <= n_line_groups <= 3
