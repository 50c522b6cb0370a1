"""flowviz.experiment: the run config round-trips through JSON and builds the right training."""

import dataclasses
import json

import pytest
import torch

import flowviz.data
from flowviz.experiment import UPLOAD, FMRun, build_fm
from flowviz.models import MLPConfig
from flowviz.train import OptimConfig, train_steps


def test_fmrun_json_round_trip():
    cfgs = [FMRun(), FMRun(source="gaussian", target="8gaussians", coupling="ot", n_data=64,
                           data_seed=3, h=0.1, batch=32,
                           model=MLPConfig(hidden=32, depth=1, emb=16),
                           optim=OptimConfig(steps=7, lr=1e-2, schedule="constant", ema=0.0))]
    for cfg in cfgs:
        back = FMRun.from_dict(json.loads(cfg.to_json()))
        assert back == cfg and hash(back) == hash(cfg)  # hashable: it keys caches
        assert isinstance(back.model, MLPConfig) and isinstance(back.optim, OptimConfig)
    assert FMRun.from_dict({"target": "rings"}) == FMRun(target="rings")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfgs[0].batch = 1


def record_couple(monkeypatch):
    """Capture the (x0, x1) batches the objective draws (flowviz.data.couple is the seam)."""
    seen = []
    real = flowviz.data.couple

    def spy(kind, x0, x1):
        seen.append((x0.clone(), x1.clone()))
        return real(kind, x0, x1)

    monkeypatch.setattr(flowviz.data, "couple", spy)
    return seen


TINY = dict(batch=64, model=MLPConfig(hidden=16, depth=1, emb=8), optim=OptimConfig(steps=3))


def in_set(x, pts):
    """Every row of x is exactly one of the rows of pts."""
    return bool((x[:, None, :] == pts[None]).all(-1).any(1).all())


def test_build_fm_upload_uses_only_the_uploaded_points(monkeypatch):
    seen = record_couple(monkeypatch)
    pts = torch.tensor([[10.0, 10.0], [10.0, -10.0], [-10.0, 0.0]])
    st = build_fm(FMRun(target=UPLOAD, n_data=500, **TINY), uploaded=pts)
    train_steps(st, 3)
    assert st.step == 3 and len(seen) == 3
    x1 = torch.cat([b for _, b in seen])
    assert in_set(x1, pts)
    assert len(torch.unique(x1, dim=0)) == 3  # all of them are used
    x0 = torch.cat([a for a, _ in seen])  # the source is still N(0, I)
    assert x0.abs().max() < 6 and abs(float(x0.std()) - 1) < 0.1
    with pytest.raises(ValueError, match="uploaded"):
        build_fm(FMRun(target=UPLOAD, **TINY))


def test_build_fm_upload_as_source(monkeypatch):
    seen = record_couple(monkeypatch)
    pts = torch.tensor([[7.0, 7.0], [-7.0, 7.0]])
    train_steps(build_fm(FMRun(source=UPLOAD, target="moons", **TINY), uploaded=pts), 2)
    assert in_set(torch.cat([a for a, _ in seen]), pts)
    assert not in_set(torch.cat([b for _, b in seen]), pts)


def test_build_fm_fixed_training_set(monkeypatch):
    seen = record_couple(monkeypatch)
    cfg = FMRun(target="8gaussians", n_data=50, data_seed=4, **TINY)
    train_steps(build_fm(cfg), 3)
    fixed = flowviz.data.sample("8gaussians", 50, seed=4)[0]
    assert torch.equal(cfg.target_points(), fixed)
    assert in_set(torch.cat([b for _, b in seen]), fixed)
    # h > 0 widens each fixed point into N(y_i, h^2 I): near, not on, the set
    seen.clear()
    train_steps(build_fm(dataclasses.replace(cfg, h=0.05)), 3)
    d = torch.cdist(torch.cat([b for _, b in seen]), fixed).min(1).values
    assert (d > 0).all() and d.max() < 0.05 * 6
    # n_data = 0: fresh samples, not a fixed set
    assert FMRun(target="moons").target_points() is None


def test_same_config_same_run():
    cfg = FMRun(target="moons", **TINY)
    a, b = build_fm(cfg), build_fm(cfg)
    train_steps(a, 3)
    train_steps(b, 3)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters(),
                                                  strict=True))
    assert a.history == b.history
