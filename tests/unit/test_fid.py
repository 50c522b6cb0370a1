"""Standard FID (flowviz.images.fid) through the real torch-fidelity code path.

No real Inception weights exist here, so a stand-in file is written in torch-fidelity's own
format: a state_dict of its FeatureExtractorInceptionV3 with seeded random (He) init. The oracle
is flowviz.images.frechet.frechet_distance on the 2048-d features of that same network.
"""

import builtins
import json

import pytest
import torch
from threadpoolctl import threadpool_limits

from flowviz.images import fid
from flowviz.images.frechet import frechet_distance

N = 4  # images per set: the 299 x 299 Inception took ~0.4 s an image on the busy 2-core CPU


@pytest.fixture(scope="module")
def inception(tmp_path_factory):
    """(network, path of its weights file in torch-fidelity's format)."""
    tf3 = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    cls = tf3.FeatureExtractorInceptionV3
    d = tmp_path_factory.mktemp("inception")
    torch.save({}, d / "empty.pt")
    torch.manual_seed(0)
    with pytest.MonkeyPatch.context() as mp:  # build the architecture without any weights
        mp.setattr(cls, "load_state_dict", lambda self, state_dict: None)
        net = cls("inception-v3-compat", ["2048"],
                  feature_extractor_weights_path=str(d / "empty.pt"))
    for m in net.modules():  # He init: 2048-d features of order 1 (mean |f| ~ 0.3)
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    torch.save(net.state_dict(), d / "weights.pth")
    return net, d / "weights.pth"


def images(seed: int, channels: int, size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(N, channels, size, size, generator=g) * 2 - 1


def features(net, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(fid.to_uint8_rgb(x))[0]


def test_to_uint8_rgb_maps_range_and_repeats_grey():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 2, 2)
    y = fid.to_uint8_rgb(x)
    assert y.dtype == torch.uint8 and y.shape == (1, 3, 2, 2)
    assert y[0, :, 0, 0].tolist() == [0, 0, 0] and y[0, 2].flatten().tolist() == [0, 128, 255, 255]
    with pytest.raises(ValueError):
        fid.to_uint8_rgb(torch.zeros(1, 2, 4, 4))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_fid_is_zero_on_itself_and_the_frechet_distance_of_the_features(inception, device):
    net, path = inception
    x = images(3, 1, 16)  # digits-shaped: grey, 16 x 16 (torch-fidelity resizes to 299)
    y = (x + 0.5).clamp(-1, 1)  # one set shifted (brighter)
    # numpy's OpenBLAS threads spin against torch's on a busy 2-core machine: eigvals took
    # 30 s with 2 threads, 5 s with 1
    with threadpool_limits(1, user_api="blas"):
        same, shifted = (fid.standard_fid(x, b, weights=path, device=device) for b in (x, y))
    # Heusel et al.'s distance on the features the same network gives, computed independently
    want = frechet_distance(features(net, x), features(net, y))
    assert want > 1e-2
    # the oracle's features come from the CPU; on a GPU cuDNN convolves in TF32 (10-bit mantissa)
    assert shifted == pytest.approx(want, rel=1e-4 if device == "cpu" else 2e-3)
    assert abs(same) < 1e-3 * shifted


def test_missing_weights_say_where_they_were_looked_for(tmp_path, monkeypatch):
    pytest.importorskip("torch_fidelity")
    monkeypatch.delenv(fid.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    cache = tmp_path / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth"
    ok, reason = fid.fid_available()
    assert not ok and str(cache) in reason and fid.WEIGHTS_ENV in reason
    with pytest.raises(RuntimeError, match="Inception weights"):
        fid.standard_fid(images(0, 1, 8), images(1, 1, 8))
    assert fid.fid_available(download=True)[0]  # torch-fidelity may download, when asked to
    ok, reason = fid.fid_available(tmp_path / "nope.pth", download=True)
    assert not ok and "nope.pth" in reason and "weights argument" in reason
    monkeypatch.setenv(fid.WEIGHTS_ENV, str(tmp_path / "env.pth"))
    ok, reason = fid.fid_available()
    assert not ok and "env.pth" in reason and f"${fid.WEIGHTS_ENV}" in reason
    (tmp_path / "env.pth").write_bytes(b"")
    ok, reason = fid.fid_available()
    assert ok and str(tmp_path / "env.pth") in reason and f"${fid.WEIGHTS_ENV}" in reason
    monkeypatch.delenv(fid.WEIGHTS_ENV)
    cache.parent.mkdir()
    cache.write_bytes(b"")
    assert fid.fid_available() == (True, f"torch-fidelity with the Inception weights at {cache} "
                                         "(from torch-fidelity's download cache)")


@pytest.mark.parametrize("error", [ImportError("No module named 'torch_fidelity'"),
                                   RuntimeError("operator torchvision::nms does not exist")])
def test_not_importable_says_why_and_how_to_install(error, monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("torch_fidelity"):
            raise error
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    ok, reason = fid.fid_available("/any/weights.pth")
    assert not ok and str(error) in reason and "pip install -r requirements-fid.txt" in reason
    with pytest.raises(RuntimeError, match="requirements-fid.txt"):
        fid.standard_fid(images(0, 3, 8), images(1, 3, 8))


PRESET = "assets/presets/images/digits-distill.pt"  # one NFE: the quickest preset to evaluate
CLASSIFIER = "assets/presets/images/digits-classifier.pt"


def test_eval_fid_refuses_with_the_reason_before_any_work(tmp_path, monkeypatch, capsys):
    from flowviz.cli import main

    monkeypatch.setenv(fid.WEIGHTS_ENV, str(tmp_path / "missing.pth"))
    assert main(["image", "eval", PRESET, "--classifier", CLASSIFIER, "--fid",
                 "--device", "cpu"]) == 2
    assert "Standard FID needs" in capsys.readouterr().err


def test_eval_fid_scores_the_samples_against_the_training_images(tmp_path, monkeypatch):
    """`image eval --fid` wiring: each row's "fid" is standard_fid of that row's samples
    against the run's training images (standard_fid itself is tested above)."""
    from flowviz.cli import main
    from flowviz.images import experiment

    calls = []

    def spy(samples, reference, weights, device):
        calls.append((samples.shape, reference.shape, weights))
        return float(len(calls))

    monkeypatch.setattr(fid, "fid_available", lambda weights=None: (True, "stand-in"))
    monkeypatch.setattr(fid, "standard_fid", spy)
    out = tmp_path / "q.json"
    assert main(["image", "eval", PRESET, "--classifier", CLASSIFIER, "--fid", "--inception",
                 "w.pth", "--n", "8", "--device", "cpu", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    n_data = len(experiment.image_data(experiment.ImageRun())[0])
    assert [r["fid"] for r in rows] == [1.0]  # the student: NFE 1 only
    assert calls == [((8, 1, 16, 16), (n_data, 1, 16, 16), "w.pth")]
