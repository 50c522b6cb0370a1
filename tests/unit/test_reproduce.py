"""`python -m flowviz figure`: the page's figures written headless, from the page's data."""

import csv
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from flowviz import data
from flowviz.analysis import coupling_metrics
from flowviz.cli import main
from flowviz.reproduce import FigureSpec, pairs_section


def test_cli_writes_every_format(tmp_path, capsys):
    out = tmp_path / "figs"
    args = ["figure", "straight_pairs", "--target", "checkerboard", "--seed", "3", "--n-data",
            "300", "--t", "0.25", "--out", str(out), "--formats", "csv", "npz", "gif"]
    assert main(args) == 0
    names = {p.name for p in out.iterdir()}
    for fig in ("pairs-independent", "pairs-minibatch-ot", "field", "exact-traj"):
        assert {f"{fig}.csv", f"{fig}.npz"} <= names
    assert "exact-traj.gif" in names and "field.gif" not in names  # GIFs only of trajectories
    spec = json.loads((out / "config.json").read_text())
    assert spec == {"page": "straight_pairs", "target": "checkerboard", "seed": 3,
                    "n_data": 300, "h": 0.05, "t": 0.25}
    # the data in the CSV are the seeded checkerboard points the page draws
    rows = list(csv.DictReader(io.StringIO((out / "pairs-independent.csv").read_text())))
    x1 = np.array([[float(r["x"]), float(r["y"])] for r in rows if r["name"] == "x1 ~ data"])
    pts = data.sample("checkerboard", 300, 3)[0].numpy()
    assert np.linalg.norm(x1[:, None] - pts[None], axis=-1).min(1).max() < 1e-5
    npz = np.load(out / "exact-traj.npz")
    assert npz["traj"].shape[0] == len(npz["ts"]) == 51 and npz["traj"].shape[2] == 2
    gif = Image.open(out / "exact-traj.gif")
    assert gif.n_frames == 51
    assert str(out / "config.json") in capsys.readouterr().out
    assert main(args[:-4] + ["--t", "1.5"]) == 2  # out of range: a message, not a traceback


def test_pairs_section_matches_the_ot_oracle():
    """Minibatch OT never raises the transport cost of the pairs it re-matches."""
    x1 = data.sample("moons", 200, 0)[0]
    x0 = torch.randn(200, 2, generator=torch.Generator().manual_seed(1))
    sec = pairs_section(x0, x1, seed=0, n=60)
    ind, ot = sec["Independent"][1], sec["Minibatch-OT"][1]
    assert ot["transport_cost"] <= ind["transport_cost"]
    a = sec["Independent"][0].arrays
    assert torch.equal(a["x0"], x0[:60])  # the first n noise points, in order


def test_command_round_trips_through_the_parser(tmp_path):
    spec = FigureSpec(target="rings", seed=7, n_data=250, h=0.1, t=0.4)
    argv = spec.command(str(tmp_path)).split()[3:] + ["--formats", "csv"]
    assert main(argv) == 0
    assert json.loads((tmp_path / "config.json").read_text()) == json.loads(spec.to_json())


def test_ode_speed_at_t0_is_the_closed_form():
    """At t = 0 the exact rectified-flow field is v*(x, 0) = E[x1] - x, so the mean speed of the
    first saved time is mean ‖mean(y) - x0‖ (article §2)."""
    from flowviz.exact import ExactField
    from flowviz.reproduce import ode_geometry

    y = data.sample("moons", 300, 0)[0]
    x0 = torch.randn(50, 2, generator=torch.Generator().manual_seed(4))
    ts, speed = ode_geometry(ExactField(y, h=0.05), x0, 1.0, steps=8)["speed"]
    assert ts[0] == 0 and speed[0] == pytest.approx(
        float((y.double().mean(0) - x0.double()).norm(dim=1).mean()), rel=1e-5)


def test_reflow_and_shortcut_figures(tmp_path):
    """`figure reflow`: the exact 1-RF's pairs cross far less than independent pairs (ODE paths
    of one field never meet); `figure shortcut`: one Euler step of the exact field lands every
    sample on the data mean, since v*(x, 0) = E[x1] - x for a Gaussian source."""
    assert main(["figure", "reflow", "--target", "moons", "--n-data", "300", "--out",
                 str(tmp_path / "rf"), "--formats", "npz"]) == 0
    cross = {}
    for name in ("independent", "rectified", "ot"):
        z = np.load(tmp_path / "rf" / f"coupling-{name}.npz")
        cross[name] = coupling_metrics(torch.from_numpy(z["x0"]), torch.from_numpy(z["x1"]),
                                       300)["crossing_fraction"]
    assert cross["rectified"] < 0.3 * cross["independent"]
    assert cross["ot"] < cross["independent"]
    assert main(["figure", "shortcut", "--target", "moons", "--n-data", "300", "--out",
                 str(tmp_path / "sc"), "--formats", "npz", "csv"]) == 0
    one = np.load(tmp_path / "sc" / "exact-euler-1.npz")
    mean = data.sample("moons", 300, 0)[0].double().mean(0).numpy()
    assert np.abs(one["x"] - mean).max() < 1e-4
    many = np.load(tmp_path / "sc" / "exact-euler-32.npz")
    assert many["x"].std(0).min() > 0.3  # 32 steps spread out over the moons
