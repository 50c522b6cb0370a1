"""flowviz.averaging: the lines through a point average to v* (article §2.1), checked against
the closed form and against random pairs that share nothing with it."""

import torch

from flowviz import data
from flowviz.averaging import learned_field, monte_carlo_velocity, probe
from flowviz.exact import ExactField


def field() -> ExactField:
    return ExactField(data.sample("moons", 400, 0)[0], h=0.05)


def test_the_weighted_directions_are_v_star():
    f, x, t = field(), torch.tensor([-0.5, 0.5]), 0.7
    every = probe(f, x, t, k=10_000)  # all lines: their weighted average is v* itself
    avg = (every["weights"][:, None] * every["directions"]).sum(0)
    torch.testing.assert_close(avg.float(), every["v_star"].float(), atol=1e-5, rtol=0)
    assert abs(every["share"] - 1) < 1e-9
    top = probe(f, x, t, k=20)
    assert len(top["weights"]) == 20 and top["share"] < 1
    assert (top["weights"][:-1] >= top["weights"][1:]).all()  # the heaviest first
    # the lines pass through x at time t: (1 - t) x0 + t x1 = x for each
    torch.testing.assert_close(((1 - t) * top["x0"] + t * top["x1"]).float(),
                               x.expand(20, 2), atol=1e-5, rtol=0)


def test_monte_carlo_agrees_with_the_closed_form():
    f, x, t = field(), torch.tensor([1.0, 0.5]), 0.5
    mc, near = monte_carlo_velocity(f, x, t, radius=0.1, m=400_000, seed=3)
    assert near > 500
    assert (mc - f(x[None], t)[0]).norm() < 0.15
    far, none = monte_carlo_velocity(f, torch.tensor([40.0, 40.0]), t, m=1000)
    assert none == 0 and torch.isnan(far).all()


def test_learned_field_of_the_exact_field_has_no_error():
    f = field()

    class Exact(torch.nn.Module):  # v* dressed as a model (a parameter for the device)
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, t):
            return f(x, t)

    pts, v, (xs, ys, err) = learned_field(Exact(), f, 0.4, lim=3.0, n_arrows=5, n_heat=9)
    assert pts.shape == v.shape == (25, 2) and err.shape == (9, 9) and len(xs) == 9
    assert float(err.max()) < 1e-5
