"""The Scaling page through streamlit.testing: it opens on flow matching's grids at every NFE and
a question; the other presets' grids, quality vs NFE and the verdict appear only once a
prediction is committed; the grids are what the preset checkpoints generate; the "Go deeper"
sections (guidance, CIFAR-10, latent flows, GPU costs, published FIDs) render when chosen."""

import json

import numpy as np
from streamlit.testing.v1 import AppTest

from flowviz import checkpoint
from flowviz.images.experiment import LABELS, generate, noise
from flowviz.images.grid import to_grid
from flowviz.viz.style import method_color
from tests.app.conftest import ROOT, charts, run_page

QUALITY = json.loads((ROOT / "assets/presets/images/quality.json").read_text())


def open_page(**state) -> AppTest:
    return run_page("scaling", timeout=600, **state)


def timed_grids(at) -> list:
    return [i for i in at.get("image") if i.proto.imgs and i.proto.imgs[0].caption.endswith(" ms")]


def reveal(at, choice: str) -> None:
    next(r for r in at.radio if r.label == "Your prediction").set_value(choice)
    next(b for b in at.button if b.label == "Reveal the answer").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def deeper(at, section: str) -> None:
    at.session_state["scaling_deeper"] = section
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_answer_absent_before_the_prediction_and_measured_after():
    at = open_page()
    assert len(timed_grids(at)) == 8  # flow matching at NFE 1..128 only
    assert not charts(at) and not at.success and not at.error
    assert not any("Fréchet distance of" in m.value for m in at.markdown)

    reveal(at, "Far off: more than 2× its distance at 128 calls")
    assert len(timed_grids(at)) == 8 + 3 * 8 + 1  # + 2-RF, Shortcut, MeanFlow, the student
    (spec,) = [json.loads(c) for c in charts(at)]
    lines = {t["name"]: t for t in spec["data"] if t.get("name") in LABELS.values()}
    assert set(lines) == set(LABELS.values())
    assert all(t["line"]["color"] == method_color(n) for n, t in lines.items())
    assert spec["layout"]["yaxis"]["type"] == "log"
    assert spec["layout"]["yaxis"]["ticktext"] == ["10", "100", "10³", "10⁴"]
    # the verdict, recomputed from quality.json: the best one-step distance over FM's at 128
    jump = min((r for r in QUALITY if r["nfe"] == 1 and r["method"] != "fm"
                and r["method"] != "reflow"), key=lambda r: r["fd"])
    fm = {r["nfe"]: r["fd"] for r in QUALITY if r["method"] == "fm"}
    ratio = jump["fd"] / fm[128]
    assert 1 < ratio <= 2  # so a "far off" prediction is wrong
    (err,) = at.error
    assert "Close: within 2× of it" in err.value and f"{jump['fd']:.1f}" in err.value
    assert f"{ratio:.1f}× flow matching's {fm[128]:.1f}" in err.value


def test_one_step_grid_is_what_the_preset_generates():
    """Recompute the MeanFlow preset's one-step samples from the same seed and noise."""
    from views.scaling_grids import grids  # the page's own cached function, same inputs

    run, state = checkpoint.load(ROOT / "assets/presets/images/digits-meanflow.pt", kind="image")
    want = to_grid(generate(run, state.sampler_model, noise(run, 16, 0), 1), 4)
    assert np.array_equal(grids("meanflow", (1,), 0)[1][0], want)


def test_works_when_the_sidebar_asks_for_uploaded_points():
    """The page is about images: a 2-D upload chosen in the sidebar does not stop it."""
    at = open_page(target="upload")
    assert len(timed_grids(at)) == 8 and not at.info
    assert any(r.label == "Your prediction" for r in at.radio)


def test_guidance_and_published_sections():
    from views.scaling_images import CFG_PER_CLASS, CFG_WS, guidance_grids

    at = open_page()
    deeper(at, "Class guidance")
    cfg = [i for i in at.get("image") if i.proto.imgs
           and i.proto.imgs[0].caption.startswith("w = ")]
    assert len(cfg) == len(CFG_WS)
    assert all("classified as its row's digit" in i.proto.imgs[0].caption for i in cfg)
    table = next(d.value for d in at.dataframe if "classified as conditioned" in d.value.columns)
    assert sorted(table["w"]) == sorted(CFG_WS)
    g = guidance_grids(CFG_WS, 32, 0)[2.0][0]  # 10 rows of CFG_PER_CLASS 16x16 tiles (pad 1)
    assert g.shape == (10 * 17 + 1, CFG_PER_CLASS * 17 + 1)

    deeper(at, "Published FIDs")
    published = next(d.value for d in at.dataframe if "FID (1 NFE)" in d.value.columns)
    assert set(published["FID (1 NFE)"]) == {12.21, 4.85, 2.92}
    assert not any("w = " in (i.proto.imgs[0].caption if i.proto.imgs else "")
                   for i in at.get("image"))  # the guidance section is gone


def test_gpu_section_is_short_and_from_the_benchmark_runs():
    at = open_page()
    deeper(at, "GPU throughput")
    tables = [d.value for d in at.dataframe]
    assert len(tables) == 3 and sum(len(t) for t in tables) <= 10
    steps = next(t for t in tables if "step cost vs FM" in t.columns).set_index("method")
    b = json.loads((ROOT / "benchmarks/images_h200_graphed_targets.json").read_text())
    ms = {r["name"]: r["ms"] for r in b["rows"] if "ms" in r}
    want = ms["flowviz loop meanflow fp32"] / ms["flowviz loop fm fp32"]
    assert steps.loc["MeanFlow", "step cost vs FM"] == f"{want:.2f}×"
    ddp = next(t for t in tables if "speed-up" in t.columns)
    assert (ddp["2 GPUs images/s"] > ddp["1 GPU images/s"]).all()


def test_bad_cifar_folder_gives_a_message(tmp_path):
    at = open_page()
    deeper(at, "CIFAR-10 data")
    at.text_input(key="cifar_root").input(str(tmp_path)).run()
    assert not at.exception
    assert any("No CIFAR-10 python batches" in e.value for e in at.error)


def test_latent_section_opens_on_presets_and_trains_a_flow_on_codes_live():
    """Presets: digits and their reconstructions, one row of decoded grids per method at NFE
    1/4/16/64 captioned with latent-quality.json's figures, the quality table; the grids are
    what the checkpoints decode. Train live: PCA codes, a flow trained on them."""
    from flowviz import store
    from flowviz.images.latent import LATENT_METHODS, decoded, latent_noise
    from views.scaling_latent import LATENT_NFES, latent_overview, latent_path

    at = open_page()
    deeper(at, "Latent flows")
    caps = [i.proto.imgs[0].caption for i in at.get("image") if i.proto.imgs]
    lat = [c for c in caps if c.startswith("FD ") and "confident" in c]
    assert len(lat) == len(LATENT_METHODS) * len(LATENT_NFES)
    assert "Decoded codes D(E(x))" in caps
    assert any("reconstructions" in c.value and "MSE" in c.value for c in at.caption)
    table = next(d.value for d in at.dataframe if "NFE" in d.value.columns)
    assert list(table["NFE"]) == [1, 2, 4, 8, 16, 32, 64, 128]
    assert table["MeanFlow"].str.startswith("FD ").all()
    assert any("identical weights" in c.value for c in at.caption)
    stamp = "".join(store.file_digest(str(latent_path(m))) for m in LATENT_METHODS)
    run, enc, state = checkpoint.load_latent(latent_path("meanflow"))
    want = to_grid(decoded(run, enc, state.sampler_model, latent_noise(run, 16, 0), 1), 4)
    assert np.array_equal(latent_overview(0, stamp)["methods"]["meanflow"][1], want)

    at.radio(key="lat_mode").set_value("Train live").run()
    at.select_slider(key="lat_k").set_value(4).run()
    assert any("variance kept" in c.value for c in at.caption)
    train = next(b for b in at.button if b.key and b.key.startswith("train:lat:pca:4:"))
    train.click().run()
    assert not at.exception, [e.value for e in at.exception]
