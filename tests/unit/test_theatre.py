"""Flow theatre: each method's frames are the states its own sampler visits, checked against
loops written here from the papers' update rules (not through flowviz.solvers)."""

import numpy as np
import pytest
import torch

from flowviz import theatre as th
from flowviz.methods.meanflow import MeanVelocity
from flowviz.models import MLPConfig, TimeMLP


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return {"rf1": TimeMLP(MLPConfig(hidden=32, n_scalars=1)).eval(),
            "shortcut": TimeMLP(MLPConfig(hidden=32, n_scalars=2)).eval(),
            "meanflow": MeanVelocity(MLPConfig(hidden=32)).eval(),
            "student": TimeMLP(MLPConfig(hidden=32, n_scalars=1)).eval()}


@pytest.fixture(scope="module")
def x0():
    return th.noise(64, seed=3)


def col(t, n):
    return torch.full((n,), float(t))


@torch.no_grad()
@pytest.mark.parametrize("k", [1, 3, 8])
def test_euler_flows_are_their_k_euler_states(nets, x0, k):
    f = th.fly("rf1", nets["rf1"], x0, k)
    x, h = x0.clone(), 1.0 / k
    assert f.nfe == k and len(f.xs) == k + 1
    for j in range(k + 1):
        assert torch.allclose(f.xs[j], x, atol=1e-6) and abs(float(f.ts[j]) - j * h) < 1e-6
        x = x + h * nets["rf1"](x, col(j * h, len(x)))


@torch.no_grad()
@pytest.mark.parametrize("k", [1, 4])
def test_shortcut_takes_k_steps_of_size_one_over_k(nets, x0, k):
    f, s, d = th.fly("shortcut", nets["shortcut"], x0, k), nets["shortcut"], 1.0 / k
    x = x0.clone()
    for j in range(k + 1):
        assert torch.allclose(f.xs[j], x, atol=1e-6)
        x = x + d * s(x, col(j * d, len(x)), col(d, len(x)))


@torch.no_grad()
def test_one_jump_models_jump_once_whatever_the_budget(nets, x0):
    mf = th.fly("meanflow", nets["meanflow"], x0, 8)
    u = nets["meanflow"]
    assert mf.nfe == 1 and mf.ts.tolist() == [0.0, 1.0]
    assert torch.allclose(mf.xs[1], x0 + u(x0, col(0, len(x0)), col(1, len(x0))), atol=1e-6)
    st = th.fly("student", nets["student"], x0, 8)
    assert torch.allclose(st.xs[1], x0 + nets["student"](x0, col(0, len(x0))), atol=1e-6)


def rk4(f, x, t0, t1, n):
    h = (t1 - t0) / n
    for j in range(n):
        t = t0 + j * h
        k1 = f(x, t)
        k2 = f(x + h / 2 * k1, t + h / 2)
        k3 = f(x + h / 2 * k2, t + h / 2)
        k4 = f(x + h * k3, t + h)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


def test_exact_panels_are_the_exact_fields_rk4_solutions(x0):
    data = torch.randn(50, 2, generator=torch.Generator().manual_seed(1)) * 0.5 + 1.0
    fields = th.fields(data, 0.1)
    x = x0.double()
    f = th.fly("exact", fields["exact"], x, 1, fine=20)
    want = rk4(lambda y, t: fields["exact"](y, col(t, len(y)).double()), x, 0.0, 1.0, 20)
    assert torch.allclose(f.xs[-1], want, atol=1e-6)
    # the VP panel: the diffusion PF-ODE beta(1-t) (x + score) / 2, written from the score
    vp = fields["vp"]

    def drift(y, t):
        return 0.5 * vp.path.beta(torch.tensor(t)) * (y + vp.score(y, col(t, len(y)).double()))
    f = th.fly("vp", vp, x, 1, fine=20)
    assert abs(float(f.ts[-1]) - vp.path.t_max) < 1e-9
    assert torch.allclose(f.xs[-1], rk4(drift, x, 0.0, vp.path.t_max, 20), atol=1e-6)


def test_frames_show_every_visited_state_and_move_straight_between(nets, x0):
    flights = th.theatre({"rf1": nets["rf1"], "meanflow": nets["meanflow"]}, x0, 3)
    times = th.frame_times(flights, n=11)
    for f in flights.values():
        p, seen = th.positions(f, times), th.visited(f, times)
        for j, t in enumerate(f.ts.double().numpy()):  # each state is a frame, marked visited
            i = int(np.argmin(abs(times - t)))
            assert abs(times[i] - t) < 1e-6 and seen[i]
            assert np.allclose(p[i], f.xs[j].numpy(), atol=1e-6)
    mf = flights["meanflow"]  # the jump is drawn as the straight line between its ends
    i = int(np.argmin(abs(times - 0.5)))
    mid = (1 - times[i]) * mf.xs[0].numpy() + times[i] * mf.xs[1].numpy()
    assert np.allclose(th.positions(mf, times)[i], mid, atol=1e-6)
    assert not th.visited(mf, times)[i]


def test_frames_csv_has_one_row_per_method_frame_and_point(nets, x0):
    flights = th.theatre({"rf1": nets["rf1"]}, x0[:5], 2)
    times = th.frame_times(flights, n=5)
    lines = th.frames_csv(flights, times).splitlines()
    assert lines[0] == "method,t,point,x,y,visited" and len(lines) == 1 + len(times) * 5
    last = lines[-1].split(",")
    assert last[0] == "1-RF" and float(last[1]) == 1.0
    assert np.allclose([float(last[3]), float(last[4])], flights["rf1"].xs[-1, 4], atol=1e-5)


def test_follow_reports_path_length_and_error_to_the_exact_endpoint(nets, x0):
    data = torch.randn(30, 2, generator=torch.Generator().manual_seed(2))
    cast = {"exact": th.fields(data, 0.1)["exact"], "rf1": nets["rf1"],
            "shortcut": nets["shortcut"], "meanflow": nets["meanflow"]}
    flights = th.theatre(cast, x0, 4)
    parts = th.follow(cast, flights, 7, 0.25, 4)
    rf = flights["rf1"].xs[:, 7].double().numpy()
    assert np.isclose(parts["rf1"].length, np.linalg.norm(np.diff(rf, axis=0), axis=1).sum())
    end = flights["exact"].xs[-1, 7].double().numpy()
    assert np.isclose(parts["rf1"].error, np.linalg.norm(rf[-1] - end))
    assert np.allclose(parts["rf1"].x, rf[1], atol=1e-6)  # t = 1/4 is its first Euler state
    assert parts["exact"].error == 0 and parts["rf1"].jump is None
    assert parts["shortcut"].jump is not None and parts["meanflow"].jump is not None
    with pytest.raises(ValueError):
        th.theatre(cast, x0, 0)


def test_density_integrates_to_one():
    f = th.fields(torch.randn(20, 2), 0.1)["exact"]
    g, p = th.density(f, 0.5, 5.0, n=120)
    assert abs(p.sum() * (g[1] - g[0]) ** 2 - 1) < 0.02


def test_preset_theatre_ends_where_each_presets_own_sampler_ends():
    from flowviz import presets
    keys = ("rf1", "rf2", "ot", "shortcut", "meanflow")
    cast, x0 = th.preset_cast(keys), th.noise(50, seed=5)
    flights = th.theatre(cast, x0, 4)
    specs = presets.specs()
    for key in keys:
        name, phase = th.PRESETS[key]
        p = specs[name]
        state = presets.load(p)[phase]
        want = presets.generate(p, state, x0, 1 if key == "meanflow" else 4)
        assert torch.allclose(flights[key].xs[-1], want, atol=1e-6), key
