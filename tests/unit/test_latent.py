"""Latent runs (issue 7): encoder + flow on its codes in one checkpoint (kind "latent"), the
``image latent`` / ``image eval`` CLI, clear errors for bad files, and PCA checked
against scikit-learn. Tiny: k = 4 codes, a 16-wide MLP, a few steps."""

import json

import pytest
import torch

from flowviz import checkpoint
from flowviz.cli import main
from flowviz.images.latent import (
    PCA,
    LatentRun,
    decoded,
    fit_encoder,
    flow_on_codes,
    latent_images,
    latent_noise,
)
from flowviz.models import MLPConfig
from flowviz.train import OptimConfig, train_steps

CLASSIFIER = "assets/presets/images/digits-classifier.pt"


def tiny(**kw) -> LatentRun:
    return LatentRun(**{"encoder": "ae", "k": 4, "ae_steps": 5, "batch": 16,
                        "model": MLPConfig(hidden=16, depth=1),
                        "optim": OptimConfig(steps=3, lr=1e-3, warmup=1), **kw})


def trained(run: LatentRun):
    enc, _ = fit_encoder(run, latent_images(run))
    state = flow_on_codes(run, enc)
    train_steps(state, run.optim.steps)
    return enc, state


@pytest.mark.parametrize("encoder", ["pca", "ae"])
@pytest.mark.parametrize("method", ["fm", "shortcut", "meanflow"])
def test_checkpoint_round_trip_keeps_encoder_and_flow(tmp_path, encoder, method, seed):
    run = tiny(encoder=encoder, method=method)
    enc, state = trained(run)
    z0 = latent_noise(run, 8, 3)
    want = decoded(run, enc, state.sampler_model, z0, 2)
    p = checkpoint.save(tmp_path / "lat.pt", {"encoder": enc, "run": state}, run,
                        resumable=False)
    raw = torch.load(p, weights_only=True)  # plain tensors and numbers only
    assert raw["kind"] == "latent" and set(raw["phases"]) == {"encoder", "run"}
    run2, enc2, state2 = checkpoint.load_latent(p)
    assert run2 == run and enc2.seconds == enc.seconds and enc2.machine == enc.machine
    for a, b in ((enc.net, enc2.net), (state.sampler_model, state2.sampler_model)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[n], sb[n]) for n in sa)
    got = decoded(run2, enc2, state2.sampler_model, z0, 2)
    assert got.shape == (8, 1, 16, 16) and torch.equal(got, want)


def test_pca_matches_scikit_learn_and_is_exact_at_full_rank(tmp_path):
    """The 16x16 digits are bilinear upsamplings of 8x8 ones: rank <= 64, so k = 64 codes
    reproduce them exactly, also after a checkpoint round trip; for k = 8 the reconstruction
    (the projection on the top-8 principal subspace) and the variance kept equal sklearn's."""
    from sklearn.decomposition import PCA as SkPCA

    x = latent_images(LatentRun())
    flat = x.flatten(1).double().numpy()
    sk = SkPCA(8, svd_solver="full").fit(flat)
    ours = PCA(x, 8)
    rec = ours.decode(ours.encode(x)).flatten(1).double().numpy()
    assert abs(float(ours.explained) - sk.explained_variance_ratio_.sum()) < 1e-5
    assert abs(rec - sk.inverse_transform(sk.transform(flat))).max() < 1e-4
    run = tiny(encoder="pca", k=64)
    enc, state = trained(run)
    p = checkpoint.save(tmp_path / "pca.pt", {"encoder": enc, "run": state}, run)
    enc2 = checkpoint.load_latent(p)[1]
    assert (enc2.decode(enc2.encode(x)) - x).abs().max() < 1e-4


def test_cli_trains_saves_loads_and_evaluates(tmp_path, capsys):
    cfg = tmp_path / "lat.json"
    cfg.write_text(tiny(method="meanflow").to_json())
    out, grids, q = tmp_path / "lat.pt", tmp_path / "grids", tmp_path / "q.json"
    assert main(["image", "latent", "--config", str(cfg), "--out", str(out), "--chunk", "2",
                 "--grids", str(grids), "--device", "cpu"]) == 0
    assert (grids / "nfe1.png").is_file() and (grids / "nfe128.png").is_file()
    run, enc, state = checkpoint.load_latent(out)
    assert state.step == 3 and run.method == "meanflow"
    x = decoded(run, enc, state.sampler_model, latent_noise(run, 5), 1)
    assert x.shape == (5, 1, 16, 16) and torch.isfinite(x).all()
    # a second run reuses the first one's encoder (the presets share one autoencoder)
    cfg2 = tmp_path / "fm.json"
    cfg2.write_text(tiny(method="fm").to_json())
    assert main(["image", "latent", "--config", str(cfg2), "--out", str(tmp_path / "fm.pt"),
                 "--encoder", str(out), "--device", "cpu"]) == 0
    assert torch.equal(checkpoint.load_latent(tmp_path / "fm.pt")[1].net.dec[0].weight,
                       enc.net.dec[0].weight)
    assert main(["image", "eval", str(out), "--classifier", CLASSIFIER, "--n", "40",
                 "--nfe", "1", "2", "--json", str(q), "--device", "cpu"]) == 0
    rows = json.loads(q.read_text())
    assert [(r["what"], r["nfe"]) for r in rows] == [
        ("data", None), ("reconstruction", None), ("samples", 1), ("samples", 2)]
    assert all(r["n"] == 40 and r["fd"] >= 0 and 0 <= r["confident"] <= 1 for r in rows)


def test_bad_input_gives_a_message_not_a_traceback(tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError, match="Not a readable checkpoint"):
        checkpoint.load_latent(junk)
    run = tiny()
    enc, state = trained(run)
    good = checkpoint.save(tmp_path / "good.pt", {"encoder": enc, "run": state}, run)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:2000])  # truncated
    with pytest.raises(checkpoint.CheckpointError, match="Not a readable checkpoint"):
        checkpoint.load_latent(cut)
    ck = torch.load(good, weights_only=True)
    ck["config"]["k"] = 8  # weights of k = 4 under a k = 8 config
    torch.save(ck, tmp_path / "mismatch.pt")
    with pytest.raises(checkpoint.CheckpointError, match="does not match its config"):
        checkpoint.load_latent(tmp_path / "mismatch.pt")
    with pytest.raises(checkpoint.CheckpointError, match="holds a 'image' model"):
        checkpoint.load_latent("assets/presets/images/digits-distill.pt")
    capsys.readouterr()
    assert main(["image", "eval", str(cut), "--classifier", CLASSIFIER]) == 2
    assert "error: Not a readable checkpoint" in capsys.readouterr().err
    assert main(["image", "eval", "assets/presets/meanflow-moons.pt", "--classifier",
                 CLASSIFIER]) == 2  # a 2-D run: neither an image nor a latent checkpoint
    assert "holds a 'meanflow' model, not 'image' or 'latent'" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"encoder": "vae"}))
    assert main(["image", "latent", "--config", str(bad), "--out", str(junk)]) == 2
    assert "encoder in" in capsys.readouterr().err
    other = tmp_path / "k8.json"
    other.write_text(tiny(k=8).to_json())
    assert main(["image", "latent", "--config", str(other), "--out", str(junk),
                 "--encoder", str(good)]) == 2
    assert "not this config's" in capsys.readouterr().err
