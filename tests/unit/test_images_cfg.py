"""Class-conditional image FM with classifier-free guidance (issue 7): label dropout at its rate,
guidance linear in w (w = 0 unconditional, w = 1 conditional), a tiny conditional run's
checkpoint round trip and CLI, old unconditional checkpoints unchanged, and an oracle check that
guided samples of a class are what the project's digits classifier calls that class."""

import dataclasses
import json
import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from flowviz import checkpoint
from flowviz.cli import main
from flowviz.images.data import digits, normal_sampler, tensor_sampler
from flowviz.images.experiment import ImageRun, build_image, class_labels, generate, noise
from flowviz.methods.fm import drop_labels, fm_loss, fm_objective, guided
from flowviz.models import TimeUNet, UNetConfig
from flowviz.train import OptimConfig, train_steps
from tests.conftest import ROOT, labels_passed

TINY = UNetConfig(size=8, base=8, mults=(1, 2), groups=4, emb=16, n_classes=10)
OPT = OptimConfig(steps=3, lr=1e-3, warmup=1)
RUN = ImageRun(size=8, batch=8, model=TINY, optim=OPT, label_drop=0.1, guidance=2.0)
PRESETS = ROOT / "assets" / "presets" / "images"


def random_unet() -> TimeUNet:
    net = TimeUNet(TINY)
    for p in net.parameters():  # zero-initialised output layers would make the checks trivial
        p.data.normal_(0, 0.3)
    return net.eval()


def test_label_dropout_rate_within_binomial_bounds():
    n, p = 40_000, 0.1
    x, y = digits(8)
    obj = fm_objective(normal_sampler((1, 8, 8)), tensor_sampler(x, y), n, n_classes=10,
                       p_uncond=p)
    lab = labels_passed(obj)
    rate = float((lab == 10).double().mean())
    assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / n)  # 4 standard deviations
    kept = lab[lab != 10]  # the others keep their images' labels: all ten digits
    assert set(kept.tolist()) == set(range(10))
    c = torch.arange(10).repeat(1000)
    assert torch.equal(drop_labels(c, 10, 0.0, torch.Generator()), c)
    assert (drop_labels(c, 10, 1.0 - 1e-12, torch.Generator()) == 10).all()


def test_unconditional_objective_is_unchanged(seed):
    """n_classes = 0 draws exactly what it always drew: x0, x1, then FM's t; no label."""
    x, y = digits(8)
    net = TimeUNet(dataclasses.replace(TINY, n_classes=0))
    for p in net.parameters():
        p.data.normal_(0, 0.3)
    s0, s1 = normal_sampler((1, 8, 8)), tensor_sampler(x, y)
    got = fm_objective(s0, s1, 16)(net, torch.Generator().manual_seed(3))[0]
    g = torch.Generator().manual_seed(3)
    x0, x1 = s0(16, g)[0], s1(16, g)[0]
    assert torch.equal(got, fm_loss(net, x0, x1, generator=g))


def test_guidance_is_linear_in_w(seed):
    net = random_unet()
    x, t = torch.randn(6, 1, 8, 8), torch.rand(6)
    c = torch.tensor([0, 1, 2, 3, 4, 5])
    with torch.no_grad():
        vu, vc = net(x, t), net(x, t, label=c)
        assert not torch.allclose(vu, vc)
        assert torch.equal(guided(net, 0.0)(x, t, label=c), vu)  # w = 0: unconditional
        assert guided(net, 1.0) is net  # w = 1: the conditional field itself
        for w in (0.5, 2.0, 4.0):
            assert torch.allclose(guided(net, w)(x, t, label=c), vu + w * (vc - vu), atol=1e-5)
        # the sampler: one Euler step from t = 0 is x0 + the guided field, for every w
        run = dataclasses.replace(RUN)
        f = [generate(run, net, x, 1, c, w) for w in (0.0, 1.0, 3.0)]
        assert torch.allclose(f[0], x + net(x, torch.zeros(6)), atol=1e-5)
        assert torch.allclose(f[1], x + net(x, torch.zeros(6), label=c), atol=1e-5)
        assert torch.allclose(f[2] - f[0], 3 * (f[1] - f[0]), atol=1e-4)
        assert torch.allclose(generate(run, net, x, 2, c), generate(run, net, x, 2, c, 2.0))


def test_tiny_conditional_run_trains_and_round_trips_weights_only(tmp_path, seed):
    state = build_image(RUN)
    train_steps(state, 3, log_every=1)
    assert state.step == 3 and state.status == "done"
    path = checkpoint.save(tmp_path / "c.pt", state, RUN)
    raw = torch.load(path, weights_only=True)
    assert raw["kind"] == "image"
    run2, state2 = checkpoint.load(path, kind="image")
    assert run2 == RUN and run2.conditional and run2.label_drop == 0.1 and run2.guidance == 2.0
    x0, lab = noise(RUN, 5), class_labels(RUN, 5)
    assert torch.equal(generate(RUN, state.sampler_model, x0, 2, lab, 3.0),
                       generate(run2, state2.sampler_model, x0, 2, lab, 3.0))
    with pytest.raises(ValueError, match="method 'fm'"):
        dataclasses.replace(RUN, method="shortcut")
    with pytest.raises(ValueError, match="10 classes"):
        dataclasses.replace(RUN, model=dataclasses.replace(TINY, n_classes=3))


def test_old_unconditional_checkpoint_still_loads():
    run, state = checkpoint.load(PRESETS / "digits-fm.pt", kind="image")
    assert not run.conditional and run.model.n_classes == 0
    x0 = noise(run, 2)
    assert generate(run, state.sampler_model, x0, 2).shape == (2, 1, 16, 16)
    with pytest.raises(ValueError, match="unconditional"):
        generate(run, state.sampler_model, x0, 2, torch.tensor([0, 1]), 2.0)


def test_cli_trains_a_conditional_run_and_samples_guided_grids(tmp_path, capsys):
    cfg = tmp_path / "fm.json"
    cfg.write_text(json.dumps(dataclasses.asdict(dataclasses.replace(
        RUN, model=dataclasses.replace(TINY, n_classes=0)))))
    ck = tmp_path / "c.pt"
    assert main(["image", "train", "--config", str(cfg), "--out", str(ck), "--conditional",
                 "--label-drop", "0.2", "--guidance", "1.5", "--device", "cpu"]) == 0
    run = checkpoint.load(ck)[0]
    assert run.model.n_classes == 10 and run.label_drop == 0.2 and run.guidance == 1.5
    assert main(["image", "sample", str(ck), "--nfe", "1", "--guidance", "0", "2", "--n", "10",
                 "--out", str(tmp_path / "g"), "--device", "cpu"]) == 0
    assert {p.name for p in (tmp_path / "g").iterdir()} == {"nfe1_w0.png", "nfe1_w2.png"}


def test_guided_samples_are_classified_as_their_class(seed):
    """Oracle: a tiny conditional FM trained briefly on two digit classes (0 and 1, 8x8). The
    project's digits classifier (16x16: samples upsampled as the data were) calls guided samples
    of class c "c" more often than unguided (w = 0) ones, and at least 90 % of the time."""
    from flowviz.images.frechet import features_and_probs, load_classifier

    x, y = digits(8)
    keep = y < 2
    run = dataclasses.replace(RUN, batch=64, optim=OptimConfig(steps=300, lr=3e-3, warmup=20))
    state = build_image(run, images=(x[keep], y[keep]))
    train_steps(state, 300)
    clf, _ = load_classifier(PRESETS / "digits-classifier.pt")
    x0 = noise(run, 100, seed=7)
    lab = torch.arange(100) % 2
    share = {}
    for w in (0.0, 3.0):
        xs = generate(run, state.sampler_model, x0, 8, lab, w)
        xs = F.interpolate(xs, size=(16, 16), mode="bilinear", align_corners=False).clamp(-1, 1)
        share[w] = float((features_and_probs(clf, xs)[1].argmax(1) == lab).double().mean())
    assert share[3.0] > share[0.0] and share[3.0] >= 0.9, share


def test_partial_label_is_what_the_sampler_uses():
    """generate(label=c) integrates guided(net, w) with label c: the same as solving it."""
    from flowviz.solvers import solve

    net, x0 = random_unet(), torch.randn(4, 1, 8, 8)
    c = torch.tensor([3, 3, 7, 7])
    want = solve(partial(guided(net, 2.5), label=c), x0, "euler", 3).x
    assert torch.equal(generate(RUN, net, x0, 3, c, 2.5), want)
