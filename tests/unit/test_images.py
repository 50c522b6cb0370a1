"""Images (issue 7): the U-Net under every method, CIFAR-format data, checkpoints, the CLI and
the classifier-feature Fréchet distance. Everything tiny: 8x8 digits, 8-channel U-Nets."""

import dataclasses
import json
import math
import pickle
import shutil

import numpy as np
import pytest
import torch

from flowviz import checkpoint
from flowviz.cli import main
from flowviz.images import data as imdata
from flowviz.images.experiment import (
    ImageRun,
    UNetMeanVelocity,
    _images,
    build_image,
    compile_state,
    generate,
    noise,
)
from flowviz.images.frechet import frechet_distance
from flowviz.images.grid import to_grid
from flowviz.models import TimeUNet, UNetConfig
from flowviz.models.unet import set_precision
from flowviz.train import OptimConfig, train_steps

TINY = UNetConfig(size=8, base=8, mults=(1, 2), groups=4, emb=16)
OPT = OptimConfig(steps=3, lr=1e-3, warmup=1)
RUN = ImageRun(size=8, batch=8, model=TINY, optim=OPT)


def test_unet_signature_and_jvp_match_finite_differences(seed):
    net = TimeUNet(dataclasses.replace(TINY, n_scalars=2, n_classes=10, attn=(8,))).double()
    for p in net.parameters():  # zero-initialised output layers would make the check trivial
        p.data.normal_(0, 0.3)
    x, t, r = torch.randn(3, 1, 8, 8).double(), torch.rand(3).double(), torch.rand(3).double()
    assert net(x, t, r).shape == x.shape
    assert not torch.equal(net(x, t, r, label=torch.tensor([1, 2, 3])), net(x, t, r))
    with pytest.raises(ValueError, match="scalar conditions"):
        net(x, t)
    vx = torch.randn_like(x)
    _, d = torch.func.jvp(lambda x, t: net(x, t, r), (x, t), (vx, torch.ones_like(t)))
    e = 1e-6
    fd = (net(x + e * vx, t + e, r) - net(x - e * vx, t - e, r)) / (2 * e)
    assert float((d - fd).norm() / fd.norm()) < 1e-6


def test_bf16_compute_keeps_fp32_weights_and_output(seed):
    net = set_precision(TimeUNet(TINY), torch.bfloat16)
    x = torch.randn(2, 1, 8, 8)
    out = net(x, torch.rand(2))
    assert out.dtype == torch.float32 and all(p.dtype == torch.float32 for p in net.parameters())


@pytest.mark.parametrize("method", ["fm", "shortcut", "meanflow"])
def test_every_method_trains_on_tiny_images(method, seed):
    run = dataclasses.replace(RUN, method=method)
    state = build_image(run)
    train_steps(state, 3, log_every=1)
    assert state.step == 3 and state.status == "done"
    assert all(np.isfinite(h["loss"]) for h in state.history)
    x = generate(run, state.sampler_model, noise(run, 4), 2)
    assert x.shape == (4, 1, 8, 8) and torch.isfinite(x).all()


def test_reflow_and_distill_train_from_a_teacher(seed):
    teacher = build_image(RUN)
    train_steps(teacher, 3)
    pairs = dataclasses.replace(RUN.reflow, n_pairs=16, solver="euler", steps=2, chunk=8)
    for method in ("reflow", "distill"):
        run = dataclasses.replace(RUN, method=method, teacher="t.pt", reflow=pairs)
        state = build_image(run, teacher=teacher.sampler_model)
        # starts from the teacher's weights (Lee et al.; InstaFlow)
        for a, b in zip(state.model.parameters(), teacher.sampler_model.parameters(),
                        strict=True):
            assert torch.equal(a, b)
        train_steps(state, 3)
        assert state.status == "done" and state.objective.objective is not None
    assert generate(run, state.sampler_model, noise(run, 3), 1).shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="one-step"):
        generate(run, state.sampler_model, noise(run, 3), 2)


def _cifar(folder, n=6, seed=0):
    """A tiny archive in the official python format: data_batch_1..5 and test_batch."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in (*imdata.CIFAR_TRAIN, imdata.CIFAR_TEST):
        x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        y = rng.integers(0, 10, n)
        imdata.write_cifar_batch(folder / imdata.CIFAR_DIR / name, x, y)
        out[name] = (x, y)
    return out


def test_cifar_archive_loads_exactly_and_trains(tmp_path, seed):
    written = _cifar(tmp_path)
    x, y = imdata.load_cifar(tmp_path)
    want = np.concatenate([written[n][0] for n in imdata.CIFAR_TRAIN])
    assert x.shape == (30, 3, 32, 32)
    assert torch.allclose(x, torch.from_numpy(want.astype(np.float32) / 127.5 - 1))
    assert y.tolist() == np.concatenate([written[n][1] for n in imdata.CIFAR_TRAIN]).tolist()
    xt, _ = imdata.load_cifar(tmp_path / imdata.CIFAR_DIR, train=False)
    assert len(xt) == 6
    cfg = dataclasses.replace(TINY, channels=3, size=32)
    for method in ("fm", "meanflow"):
        run = ImageRun(method=method, data="cifar10", root=str(tmp_path), size=32, batch=4,
                       model=cfg, optim=OPT)
        state = build_image(run)
        train_steps(state, 2)
        assert state.step == 2 and state.status != "nan"
    # the checkpoint loads, and samples, where the data is gone (a run copied off the GPU
    # machine); training on there stops with the loader's message
    checkpoint.save(tmp_path / "c.pt", state, run)
    shutil.rmtree(tmp_path / imdata.CIFAR_DIR)
    _images.cache_clear()  # as in a fresh process
    run2, state2 = checkpoint.load(tmp_path / "c.pt", kind="image")
    assert generate(run2, state2.sampler_model, noise(run2, 2, 0), 1).shape == (2, 3, 32, 32)
    with pytest.raises(imdata.ImageDataError, match="No CIFAR-10 python batches"):
        train_steps(state2, 1)


def test_bad_cifar_folder_or_file_gives_a_clear_message(tmp_path):
    with pytest.raises(imdata.ImageDataError, match="No CIFAR-10 python batches"):
        imdata.load_cifar(tmp_path)
    d = tmp_path / imdata.CIFAR_DIR
    d.mkdir()
    (d / "test_batch").write_bytes(b"not a pickle at all")
    with pytest.raises(imdata.ImageDataError, match="lacks data_batch_1"):
        imdata.load_cifar(tmp_path)
    with pytest.raises(imdata.ImageDataError, match="not a CIFAR-10 python batch"):
        imdata.load_cifar(tmp_path, train=False)


class _Evil:
    def __reduce__(self):
        return (pytest.fail, ("the unpickler ran code from the file",))


def test_cifar_reader_refuses_code_in_a_pickle(tmp_path):
    d = tmp_path / imdata.CIFAR_DIR
    d.mkdir()
    (d / "test_batch").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": [0]}))
    with pytest.raises(imdata.ImageDataError, match="refused"):
        imdata.load_cifar(tmp_path, train=False)


def test_digits_are_scaled_and_upsampled():
    x8, y = imdata.digits(8)
    x16, _ = imdata.digits(16)
    assert x8.shape == (1797, 1, 8, 8) and x16.shape == (1797, 1, 16, 16)
    assert float(x8.min()) == -1 and float(x8.max()) == 1 and set(y.tolist()) == set(range(10))


def test_checkpoint_round_trip_weights_only(tmp_path, seed):
    run = dataclasses.replace(RUN, method="shortcut")
    state = build_image(run)
    train_steps(state, 2)
    path = checkpoint.save(tmp_path / "s.pt", state, run)
    raw = torch.load(path, weights_only=True)  # plain tensors and builtins only
    assert raw["kind"] == "image"
    run2, state2 = checkpoint.load(path, kind="image")
    assert run2 == run and state2.step == 2
    x0 = noise(run, 3)
    assert torch.equal(generate(run, state.sampler_model, x0, 2),
                       generate(run2, state2.sampler_model, x0, 2))


def test_cli_trains_saves_resumes_and_refuses_bad_input(tmp_path, capsys):
    cfg = tmp_path / "fm.json"
    cfg.write_text(json.dumps(dataclasses.asdict(RUN)))
    ck = tmp_path / "fm.pt"
    assert main(["image", "train", "--config", str(cfg), "--out", str(ck), "--chunk", "2",
                 "--device", "cpu", "--grids", str(tmp_path / "g")]) == 0
    assert checkpoint.load(ck)[1].step == 3 and (tmp_path / "g" / "nfe128.png").is_file()
    assert main(["image", "train", "--resume", str(ck), "--steps", "5", "--device", "cpu"]) == 0
    assert checkpoint.load(ck)[1].step == 5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"method": "fm", "batchh": 3}))
    assert main(["image", "train", "--config", str(bad), "--out", str(ck)]) == 2
    assert "batchh" in capsys.readouterr().err
    cifar = tmp_path / "c.json"
    cifar.write_text(json.dumps({"data": "cifar10", "root": str(tmp_path), "size": 32,
                                 "model": {"channels": 3, "size": 32}}))
    assert main(["image", "train", "--config", str(cifar), "--out", str(ck)]) == 2
    assert "No CIFAR-10 python batches" in capsys.readouterr().err
    mf = tmp_path / "mf.json"  # --compile is checked like the config (MeanFlow: no CUDA graphs)
    mf.write_text(json.dumps(dataclasses.asdict(dataclasses.replace(RUN, method="meanflow"))))
    assert main(["image", "train", "--config", str(mf), "--out", str(ck), "--device", "cpu",
                 "--compile", "reduce-overhead"]) == 2
    assert "compile_mode 'default'" in capsys.readouterr().err


def test_frechet_distance_matches_the_gaussian_closed_form():
    g = torch.Generator().manual_seed(0)
    n, mu1, mu2 = 200_000, torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    s1, s2 = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([1.0, 1.0, 1.5])
    f1 = mu1 + s1 * torch.randn(n, 3, generator=g, dtype=torch.float64)
    f2 = mu2 + s2 * torch.randn(n, 3, generator=g, dtype=torch.float64)
    exact = float((mu1 - mu2).pow(2).sum() + (s1 - s2).pow(2).sum())  # diagonal covariances
    assert frechet_distance(f1, f2) == pytest.approx(exact, abs=0.05)
    assert abs(frechet_distance(f1, f1)) < 1e-8


def test_grid_tiles_images():
    x = -torch.ones(5, 1, 4, 4)
    x[2] = 1
    a = to_grid(x, ncol=3, pad=1)
    assert a.shape == (2 * 5 + 1, 3 * 5 + 1) and a[1, 11] == 255 and a[1, 1] == 0


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["fm", "shortcut", "meanflow"])
@pytest.mark.parametrize("mode", ["", "default", "reduce-overhead"])
def test_gpu_bf16_channels_last_compile_step(method, mode):
    """Every fixed-shape method trains on a GPU eagerly and compiled (CUDA graphs included;
    MeanFlow: its JVP target as a CUDA graph, no graphs from torch.compile): finite losses,
    weights moved."""
    if method == "meanflow" and mode == "reduce-overhead":
        with pytest.raises(ValueError, match="compile_mode 'default'"):
            dataclasses.replace(RUN, method=method, compile=True, compile_mode=mode)
        return
    run = dataclasses.replace(RUN, method=method, precision="bf16", channels_last=True,
                              compile=bool(mode), compile_mode=mode or "default")
    state = build_image(run, "cuda")
    before = [p.detach().clone() for p in state.model.parameters()]
    train_steps(state, 3, log_every=1)
    assert state.status == "done" and all(math.isfinite(h["loss"]) for h in state.history)
    assert any(not torch.equal(a, b) for a, b in zip(before, state.model.parameters(),
                                                      strict=True))


@pytest.mark.parametrize("method", ["fm", "reflow", "distill", "shortcut", "meanflow"])
def test_compile_state_accepts_every_method(method, tmp_path):
    """`image train --compile` on any method: the network is compiled (lazily: nothing runs
    here); Shortcut's plain target is compiled with it, the others keep theirs."""
    from flowviz.methods.meanflow import meanflow_target

    if method in ("reflow", "distill"):
        state = build_image(RUN, "cpu")
        checkpoint.save(tmp_path / "t.pt", state, RUN)
        run = dataclasses.replace(RUN, method=method, teacher=str(tmp_path / "t.pt"))
        state = build_image(run, "cpu", teacher=state.model)
    else:
        run = dataclasses.replace(RUN, method=method)
        state = build_image(run, "cpu")
    compile_state(state, dataclasses.replace(run, compile=True))
    assert hasattr(state.model, "_compiled_call_impl") and state.model._compiled_call_impl
    target = getattr(state.objective, "target", None)
    if method == "shortcut":
        assert hasattr(target, "_torchdynamo_orig_callable")
    elif method == "meanflow":
        assert target is meanflow_target


def test_targets_are_graphed_only_on_a_gpu():
    """On a CPU the no-grad targets are the plain functions, whatever graph_target says."""
    from flowviz.methods.meanflow import meanflow_target
    from flowviz.methods.shortcut import shortcut_target

    for method, fn in (("meanflow", meanflow_target), ("shortcut", shortcut_target)):
        run = dataclasses.replace(RUN, method=method)
        assert build_image(run, "cpu").objective.target is fn


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["shortcut", "meanflow"])
def test_gpu_graphed_target_trains_as_the_eager_one(method):
    """An eager Shortcut or MeanFlow run on a GPU replays its no-grad target as a CUDA graph
    (graph_target, the default); its losses over a few steps equal those of the same run with
    the target launched eagerly (same seeds: same batches). MeanFlow also along its own field
    (tangent "model")."""
    from flowviz.device import cuda_graphed

    runs = [dataclasses.replace(RUN, method=method)]
    if method == "meanflow":
        runs.append(dataclasses.replace(runs[0], meanflow=dataclasses.replace(
            RUN.meanflow, tangent="model")))
    for base in runs:
        losses = []
        for graph in (True, False):
            state = build_image(dataclasses.replace(base, graph_target=graph), "cuda")
            assert isinstance(state.objective.target, cuda_graphed) == graph
            train_steps(state, 4, log_every=1)
            losses.append(torch.tensor([h["loss"] for h in state.history]))
        assert losses[0].isfinite().all() and torch.allclose(*losses, rtol=1e-3, atol=1e-5)
    if method == "shortcut":  # `image train --compile`: compile_state after build_image
        for mode, graphed in (("default", True), ("reduce-overhead", False)):
            state = build_image(runs[0], "cuda")
            compile_state(state, dataclasses.replace(runs[0], compile=True, compile_mode=mode))
            assert isinstance(state.objective.target, cuda_graphed) == graphed
            train_steps(state, 2, log_every=1)
            assert all(math.isfinite(h["loss"]) for h in state.history)


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["shortcut", "meanflow"])
def test_cuda_graphed_targets_match_eager_and_follow_the_weights(method):
    """cuda_graphed replays of the no-grad targets (MeanFlow's JVP, which GPU runs graph;
    Shortcut's half steps) give the eager values, on a U-Net with attention and random weights;
    after an
    in-place weight update (what the optimizer does) the replay gives the new values; a new
    batch shape captures its own graph."""
    from flowviz.device import cuda_graphed
    from flowviz.methods.meanflow import meanflow_target
    from flowviz.methods.shortcut import HALVES, shortcut_target

    cfg = dataclasses.replace(RUN.model, size=8, base=8, attn=(4,), head_dim=8, n_scalars=2)
    torch.manual_seed(0)
    net = (UNetMeanVelocity(cfg) if method == "meanflow" else TimeUNet(cfg)).cuda()
    for p in net.parameters():
        p.data.normal_(0, 0.3)  # the zero-initialised output layers would hide every error
    fn = meanflow_target if method == "meanflow" else shortcut_target
    graphed = cuda_graphed(fn)

    def args(n):
        g = torch.Generator("cuda").manual_seed(n)
        x = torch.randn(n, 1, 8, 8, generator=g, device="cuda")
        t = 0.5 * torch.rand(n, generator=g, device="cuda")
        if method == "meanflow":
            return net, x, t, t + 0.3, torch.randn_like(x)
        return net, x, t, 2.0 ** -torch.randint(0, 8, (n,), generator=g, device="cuda"), \
            HALVES, 1 / 128

    def first(o):
        return (o[0] if isinstance(o, tuple) else o).clone()

    for n in (4, 4, 6):
        a = args(n)
        ref, out = first(fn(*a)), first(graphed(*a))
        assert ref.abs().max() > 1 and torch.allclose(out, ref, rtol=1e-4, atol=1e-4)
    assert len(graphed.graphs) == 2
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(1.1)
    a = args(4)
    assert torch.allclose(first(graphed(*a)), first(fn(*a)), rtol=1e-4, atol=1e-4)


def test_pca_codes_are_standardised_and_full_rank_pca_is_exact():
    from flowviz.images.latent import PCA

    x = imdata.digits(8)[0][:300]
    full = PCA(x, 64)
    z = full.encode(x)
    assert torch.allclose(full.decode(z), x, atol=1e-4)
    assert torch.allclose(z.std(0)[:10], torch.ones(10), atol=1e-3)
    assert PCA(x, 4).explained < PCA(x, 16).explained <= 1.0


@pytest.mark.parametrize("method", ["fm", "shortcut", "meanflow"])
def test_latent_flows_train_on_codes(method, seed):
    from flowviz.images.latent import LatentRun, build_latent, fit_encoder

    x = imdata.digits(16)[0][:200]
    run = LatentRun(encoder="ae", k=4, ae_steps=5, method=method, batch=16, optim=OPT)
    enc, mse = fit_encoder(run, x)
    z = enc.encode(x).detach()
    assert z.shape == (200, 4) and np.isfinite(mse)
    state = build_latent(run, z)
    train_steps(state, 3)
    assert state.status == "done" and enc.decode(z[:2]).shape == (2, 1, 16, 16)
