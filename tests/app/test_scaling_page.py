"""The Scaling page (issue 7) through streamlit.testing: it opens on the digits presets with
grids at every NFE, the measured quality charts, the GPU table and the published table apart;
the grids are what the preset checkpoints generate; bad CIFAR folders give a message."""

import numpy as np
from streamlit.testing.v1 import AppTest

from flowviz import checkpoint
from flowviz.images.experiment import generate, noise
from flowviz.images.grid import to_grid
from tests.app.conftest import ROOT, run_page


def open_page() -> AppTest:
    return run_page("scaling", timeout=300)


def test_opens_on_the_presets_with_grids_charts_and_tables():
    at = open_page()
    grids = [i for i in at.get("image")
             if i.proto.imgs and i.proto.imgs[0].caption.endswith(" ms")]
    # 4 multi-step methods x 8 NFEs + the one-step student
    assert len(grids) == 4 * 8 + 1
    assert len(at.get("plotly_chart")) == 2
    tables = [d.value for d in at.dataframe]
    published = next(t for t in tables if "FID (1 NFE)" in t.columns)
    assert set(published["FID (1 NFE)"]) == {12.21, 4.85, 2.92}
    runs = [t for t in tables if "images/s" in t.columns]  # the latest bench run, an earlier one
    assert len(runs) == 2 and all((t["images/s"] > 0).all() for t in runs)
    assert runs[1]["what"].str.contains("DDP, 2 GPU").any()
    ratios = next(t for t in tables if "MeanFlow / FM" in t.columns)
    eager = ratios.set_index("mode").loc["fp32 eager"]  # graphed JVP beside the ungraphed one
    for m, ungraphed in (("MeanFlow", "MeanFlow, JVP target ungraphed"),
                         ("Shortcut", "Shortcut, target ungraphed")):
        assert float(eager[f"{m} / FM"][:-1]) < float(eager[f"{ungraphed} / FM"][:-1])
    assert any("not FID" in c.value for c in at.caption)


def test_one_step_grid_is_what_the_preset_generates():
    """Recompute the MeanFlow preset's one-step samples from the same seed and noise."""
    run, state = checkpoint.load(ROOT / "assets/presets/images/digits-meanflow.pt", kind="image")
    want = to_grid(generate(run, state.sampler_model, noise(run, 16, 0), 1), 4)
    from views.scaling import grids  # the page's own cached function, same inputs

    got = grids("meanflow", (1,), 0)[1][0]
    assert np.array_equal(got, want)


def test_bad_cifar_folder_gives_a_message(tmp_path):
    at = open_page()
    at.radio(key="img_data").set_value("CIFAR-10 (a local folder)").run()
    at.text_input(key="cifar_root").input(str(tmp_path)).run()
    assert not at.exception
    assert any("No CIFAR-10 python batches" in e.value for e in at.error)


def test_latent_tab_opens_on_presets_and_trains_a_flow_on_codes_live():
    """Presets: digits and their reconstructions, one row of decoded grids per method at NFE
    1/4/16/64 captioned with latent-quality.json's figures, the quality table; the grids are
    what the checkpoints decode. Train live: PCA codes, a flow trained on them."""
    from flowviz import store
    from flowviz.images.latent import LATENT_METHODS, decoded, latent_noise
    from views.scaling import LATENT_NFES, latent_overview, latent_path

    at = open_page()
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


def test_guidance_section_renders_with_the_conditional_preset():
    """Class-conditional: one grid per guidance weight from the preset (rows: digits 0-9), each
    with the measured share classified as asked (cfg_quality.json), and the table."""
    from views.scaling import CFG_PER_CLASS, CFG_WS

    at = open_page()
    assert any(h.value == "Class-conditional: guidance" for h in at.subheader)
    cfg = [i for i in at.get("image")
           if i.proto.imgs and i.proto.imgs[0].caption.startswith("w = ")]
    assert len(cfg) == len(CFG_WS)
    assert all("classified as its row's digit" in i.proto.imgs[0].caption for i in cfg)
    table = next(d.value for d in at.dataframe if "classified as conditioned" in d.value.columns)
    assert sorted(table["w"]) == sorted(CFG_WS)
    assert any("cfg_quality.json" in c.value for c in at.caption)
    from views.scaling import guidance_grids

    g = guidance_grids(CFG_WS, 32, 0)[2.0][0]  # 10 rows of CFG_PER_CLASS 16x16 tiles (pad 1)
    assert g.shape == (10 * 17 + 1, CFG_PER_CLASS * 17 + 1)
