"""Scaling, deeper: flows on codes z = E(x) of the digits, decoded for display (the latent
recipe behind InstaFlow's Stable Diffusion, article §4): the presets, or a flow trained live."""

from __future__ import annotations

import streamlit as st

from flowviz import checkpoint
from flowviz.images import data as imdata
from flowviz.images import report
from flowviz.images.experiment import LABELS
from flowviz.images.frechet import METRIC
from flowviz.images.latent import (
    ENCODERS,
    LATENT_METHODS,
    LatentRun,
    build_latent,
    fit_encoder,
    latent_noise,
)
from views.cache import cached
from views.scaling_grids import N_GRID, PRESETS, drawn, grid_header, stamp
from views.state import Settings
from views.training import live_training

LATENT_NFES = (1, 4, 16, 64)
LATENT_QUALITY = PRESETS / "latent-quality.json"  # `image eval` of the latent presets


def latent_path(method: str):
    return PRESETS / f"latent-ae-{method}.pt"


@st.cache_resource(show_spinner="Fitting the encoder…", max_entries=4)
def encoder(kind: str, k: int):
    x = imdata.digits(16)[0]
    e, fit = fit_encoder(LatentRun(encoder=kind, k=k), x)
    return e, fit, e.encode(x).detach()


@cached(show_spinner="Decoding the latent presets (once: then kept on disk)…")
def latent_overview(seed: int, stamp: str) -> dict:
    """flowviz.images.report.latent_overview of the latent presets found (``stamp``: their
    files' digests)."""
    paths = {m: latent_path(m) for m in LATENT_METHODS if latent_path(m).is_file()}
    return report.latent_overview(paths, seed, N_GRID, LATENT_NFES)


def latent_row(label: str, g: dict, quality: list[dict]) -> None:
    """One method: its decoded grids at LATENT_NFES, each captioned with the measured quality
    at that NFE when ``quality`` (its latent-quality.json sample rows) has it."""
    at = {r["nfe"]: report.measured(r) for r in quality}
    cols = st.columns([1.3] + [1] * len(LATENT_NFES))
    cols[0].markdown(label)
    for c, k in zip(cols[1:], LATENT_NFES, strict=True):
        c.image(drawn(g[k]), caption=at.get(k), width="stretch")


def reconstructions(r: dict, label: str, fit: str) -> None:
    """16 digits beside their decoded codes D(E(x)), tiles as large as the sample grids'."""
    cols = st.columns([1.3, 1, 1, 2])
    cols[0].markdown(label)
    cols[1].image(drawn(r["digits"]), caption="Digits x", width="stretch")
    cols[2].image(drawn(r["decoded"]), width="stretch", caption="Decoded codes D(E(x))")
    cols[3].caption(f"Reconstruction MSE {r['mse']:.4f} over all {r['n']} digits (pixels in "
                    f"[−1, 1]){fit}.")


def presets_view(seed: int) -> None:
    """The latent presets: reconstructions, decoded grids per method and NFE, quality table."""
    try:
        ov = latent_overview(seed, "".join(stamp(latent_path(m)) for m in LATENT_METHODS))
    except checkpoint.CheckpointError as e:
        st.error(f"A latent preset could not be loaded: {e} Retrain them with "
                 "`bash assets/presets/images/train_latent.sh`, or train live.")
        return
    if not ov:
        st.info("No latent presets (assets/presets/images/latent-ae-*.pt): run "
                "`bash assets/presets/images/train_latent.sh`, or train live.")
        return
    q = report.read_json(LATENT_QUALITY)
    first = latent_path(ov["first"]).name
    ref = {r["what"]: r for r in q if r["checkpoint"].endswith(first) and r["what"] != "samples"}
    fd = "" if len(ref) < 2 else (
        f"; {METRIC} of {ref['reconstruction']['n']} reconstructions "
        f"{ref['reconstruction']['fd']:.1f} (the digits themselves: {ref['data']['fd']:.1f})")
    reconstructions(ov["recon"], f"**Autoencoder**  \nk = {ov['k']}, {ov['ae_steps']} steps, "
                    f"{ov['fit_seconds']:.0f} s", fd)
    grid_header("**method** (flow training)", [f"NFE {k}, decoded" for k in LATENT_NFES])
    for m, g in ov["methods"].items():
        latent_row(f"{LABELS[m]}  \n{g['params'] / 1e3:.0f}k parameters  \n"
                   f"{g['steps']} steps in {g['seconds']:.0f} s", g,
                   [r for r in q if r["what"] == "samples" and r["method"] == m])
    took = sum(g["sampling_seconds"] for g in ov["methods"].values())
    shared = "shared by the flows (identical weights)" if ov["shared"] else "not shared"
    st.caption(f"The same {N_GRID} codes z0 ~ N(0, I) (seed {seed}) for every method and NFE; "
               f"the autoencoder is {shared}; "
               f"each flow is the 2-D pages' MLP on the {ov['k']} code dimensions, trained on "
               f"{ov['machine']} (`bash assets/presets/images/train_latent.sh`). Sampling and "
               f"decoding took {took:.2f} s on {ov['sampled_on']}.")
    if q:
        st.dataframe(report.latent_quality_table(q, LATENT_METHODS), hide_index=True)
        st.caption(f"FD: {METRIC} (not FID) to all digits; confident: the share the digits "
                   f"classifier labels with p ≥ 0.9; {max(r['n'] for r in q)} samples per "
                   "point (`assets/presets/images/latent-quality.json`).")


def live_view(seed: int) -> None:
    """Fit an encoder here (PCA or the conv autoencoder) and train a flow on its codes."""
    c1, c2, c3 = st.columns(3)
    kind = c1.selectbox("Encoder", ENCODERS, key="lat_enc", format_func={
        "pca": "PCA (instant, linear)",
        "ae": f"Conv autoencoder (trained here, {LatentRun().ae_steps} steps)"}.get)
    k = c2.select_slider("Code size k", [4, 8, 16, 32], 16, key="lat_k")
    method = c3.selectbox("Method", LATENT_METHODS, format_func=LABELS.get, key="lat_method")
    enc, fit, z = encoder(kind, k)
    reconstructions(report.reconstruction(enc),
                    f"**{'PCA' if kind == 'pca' else 'Autoencoder'}**  \nk = {k}, fitted in "
                    f"{enc.seconds:.1f} s", f"; variance kept {fit:.1%}" if kind == "pca" else "")
    run = LatentRun(encoder=kind, k=k, method=method)
    state = live_training(f"lat:{kind}:{k}:{method}", lambda: build_latent(run, z), chunk=100,
                          meta={"run": run})
    if state is not None and state.step > 0:
        grid_header("**method**", [f"NFE {n}, decoded" for n in LATENT_NFES])
        g = report.latent_grids(run, enc, state.sampler_model, latent_noise(run, N_GRID, seed),
                                LATENT_NFES)
        latent_row(f"{LABELS[method]}  \n{state.step} steps, live", g, [])


def latent(cfg: Settings) -> None:
    st.subheader("Latent flows: generate codes, decode them")
    st.caption("A flow can run on codes z = E(x) of the images, decoded for display (the "
               "latent recipe behind InstaFlow's Stable Diffusion, article §4); the network is "
               "then the 2-D pages' MLP with one input per code dimension.")
    mode = st.radio("Latent runs", ["Presets (trained on a CPU)", "Train live"],
                    horizontal=True, key="lat_mode")
    (live_view if mode == "Train live" else presets_view)(cfg.seed)
