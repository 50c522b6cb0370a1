"""One-step distillation (flowviz.methods.distill): the residual it trains, a single network call,
and recovery of a known ODE map."""

import torch

from flowviz.methods.distill import distill_objective, one_step
from flowviz.methods.reflow import Pairs
from flowviz.models import MLPConfig, TimeMLP
from flowviz.train import OptimConfig, init_state, train_steps


class Counting(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.calls, self.ts = net, 0, []

    def forward(self, x, t, **cond):
        self.calls += 1
        self.ts.append(t)
        return self.net(x, t, **cond)


def test_one_step_is_one_call_at_t0():
    m = Counting(TimeMLP(MLPConfig(hidden=16, depth=1, n_classes=3)))
    x0 = torch.randn(7, 2)
    lab = torch.tensor([0, 1, 2, 0, 1, 2, 3])  # 3: the "no label" token
    x1 = one_step(m, x0, label=lab)
    assert m.calls == 1 and torch.all(m.ts[0] == 0)
    assert torch.allclose(x1, x0 + m.net(x0, torch.zeros(7), label=lab))


def test_objective_is_the_endpoint_residual():
    """All sampling weight on pair j: the loss is ||x0_j + v(x0_j, 0) - x1_j||^2 exactly."""
    g = torch.Generator().manual_seed(0)
    pairs = Pairs(torch.randn(5, 2, generator=g), torch.randn(5, 2, generator=g))
    net = TimeMLP(MLPConfig(hidden=16, depth=1))
    for j in range(5):
        w = torch.zeros(5)
        w[j] = 1.0
        loss, _ = distill_objective(pairs, 4, weights=w)(net, torch.Generator().manual_seed(1))
        with torch.no_grad():
            r = pairs.x0[j] + net(pairs.x0[j:j + 1], torch.zeros(1))[0] - pairs.x1[j]
        assert torch.allclose(loss, r.pow(2).sum(), atol=1e-6)


def test_student_learns_an_affine_map():
    """Teacher map x1 = A x0 + b (the ODE map between two Gaussians): one step recovers it."""
    g = torch.Generator().manual_seed(0)
    A, b = torch.tensor([[0.3, -0.1], [0.2, 0.25]]), torch.tensor([2.0, -1.0])
    x0 = torch.randn(4000, 2, generator=g)
    pairs = Pairs(x0, x0 @ A.T + b)
    torch.manual_seed(0)
    state = init_state(TimeMLP(MLPConfig(hidden=32, depth=2)), distill_objective(pairs, 256),
                       OptimConfig(steps=400, lr=1e-2, warmup=20))
    train_steps(state, 400)
    xt = torch.randn(1000, 2, generator=g)
    with torch.no_grad():
        err = (one_step(state.sampler_model, xt) - (xt @ A.T + b)).norm(dim=1)
    assert err.mean() < 0.05, float(err.mean())
