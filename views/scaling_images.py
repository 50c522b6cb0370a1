"""Scaling, deeper: classifier-free guidance on the class-conditional digits preset, one method
trained live on the digits, and a look at a local CIFAR-10 folder."""

from __future__ import annotations

import dataclasses
import time

import streamlit as st

from flowviz import checkpoint
from flowviz.images import data as imdata
from flowviz.images import report
from flowviz.images.experiment import LABELS, ImageRun, build_image, generate, noise
from flowviz.images.grid import to_grid
from flowviz.models import DIGITS_UNET
from flowviz.train import OptimConfig
from views.cache import cached
from views.scaling_grids import N_GRID, ORDER, PRESETS, drawn, load_presets, stamp
from views.state import Settings, device
from views.training import live_training

CFG_PRESET = PRESETS / "digits-fm-cfg.pt"  # class-conditional FM (label dropout 0.1)
CFG_QUALITY = PRESETS / "cfg_quality.json"  # `image eval --guidance ...` of that preset
CFG_WS = (0.0, 1.0, 2.0, 4.0)  # guidance weights shown
CFG_NFE = 32
CFG_PER_CLASS = 4  # samples per digit row (the same noise in every row and every w)


@st.cache_resource(show_spinner="Loading the class-conditional preset…")
def load_cfg_preset():
    """(run, network) of the class-conditional digits preset, or None."""
    if not CFG_PRESET.is_file():
        return None
    run, state = checkpoint.load(CFG_PRESET, kind="image")
    return run, state.sampler_model.eval()


@cached(show_spinner="Sampling the guided grids (once: then kept on disk)…")
def guidance_grids(ws: tuple, nfe: int, seed: int, stamp: str = "") -> dict:
    """w -> (grid: one row per digit, seconds) of the class-conditional preset, the same
    noise in every row and for every w; "machine". ``stamp``: the preset file's digest."""
    run, net = load_cfg_preset()
    return report.guided_grids(run, net, ws, nfe, CFG_PER_CLASS, seed)


def guidance(cfg: Settings) -> None:
    """Class-conditional FM with classifier-free guidance: rows = digits, one grid per w."""
    st.subheader("Class guidance: one network, two fields")
    pre = load_cfg_preset()
    if pre is None:
        st.info("No class-conditional preset (assets/presets/images/digits-fm-cfg.pt): run "
                "`bash assets/presets/images/train.sh`.")
        return
    st.markdown("Euler with u = u(x, t | ∅) + w (u(x, t | c) − u(x, t | ∅)): labels were "
                f"dropped with probability {pre[0].label_drop:g} in training, so the same "
                "U-Net learned the unconditional field too. Row c: the label c; every row "
                "and grid starts from the same noise.")
    g = guidance_grids(CFG_WS, CFG_NFE, cfg.seed, stamp(CFG_PRESET))
    table = report.guidance_table(report.read_json(CFG_QUALITY), CFG_NFE)
    share = {r["w"]: r["classified as conditioned"] for r in table}
    for c, w in zip(st.columns(len(CFG_WS)), CFG_WS, strict=True):
        c.image(drawn(g[w][0]), width="stretch", caption=f"w = {w:g}" + (
            f" · classified as its row's digit {share[w]}" if w in share else ""))
    if table:
        st.dataframe(table, hide_index=True)
    st.caption(f"{CFG_NFE} steps, two network calls each (one at w = 1). w = 0 ignores the "
               "label (about one in ten is the row's digit); past 1 the label is obeyed but "
               "variety shrinks and the distance to the real digits grows. Figures: `python -m "
               "flowviz image eval --guidance …` (`assets/presets/images/cfg_quality.json`); "
               f"these grids took {sum(g[w][1] for w in CFG_WS):.2f} s on {g['machine']}.")


def live(cfg: Settings) -> None:
    """One method trained here on the digits, sampled from the same noise at a few NFEs."""
    st.subheader("Train one method live on the digits")
    st.caption(f"The CPU default U-Net ({DIGITS_UNET.base} channels): about a minute on a laptop "
               "for a first result. ReFlow and distillation train from the FM preset.")
    c1, c2, c3 = st.columns(3)
    method = c1.selectbox("Method", ORDER, format_func=LABELS.get, key="live_method")
    steps = c2.select_slider("Steps", [100, 200, 400, 800, 1600], 400, key="live_steps")
    batch = c3.select_slider("Batch", [32, 64, 128], 64, key="live_batch")
    needs_teacher = method in ("reflow", "distill")
    run = ImageRun(method=method, batch=batch, model=DIGITS_UNET,
                   teacher="digits-fm.pt" if needs_teacher else "",
                   optim=OptimConfig(steps=steps, lr=2e-3, warmup=min(100, steps // 4)))
    if needs_teacher and "fm" not in load_presets():
        st.info("ReFlow and distillation need the FM preset (assets/presets/images).")
        return
    dev = device(cfg)

    def build():
        if not needs_teacher:
            return build_image(run, dev)
        t_run, teacher = load_presets()["fm"]  # the teacher's architecture, a small pair set
        student = dataclasses.replace(run, model=t_run.model, reflow=dataclasses.replace(
            run.reflow, n_pairs=512, steps=16, chunk=512))
        return build_image(student, dev, teacher=teacher)

    state = live_training(f"img:{run.to_json()}", build, chunk=20, meta={"run": run})
    if state is None or state.step == 0:
        return
    trained = state.meta.get("run", run)
    x0 = noise(trained, N_GRID, cfg.seed, dev)
    ks = (1,) if method == "distill" else (1, 4, 16, 64)
    t0 = time.perf_counter()
    for c, k in zip(st.columns(len(ks)), ks, strict=True):
        c.image(to_grid(generate(trained, state.sampler_model, x0, k), 4, scale=4),
                caption=f"NFE {k}", width="stretch")
    st.caption(f"{state.step} steps in {state.seconds:.1f} s: "
               f"{state.step * batch / max(state.seconds, 1e-9):.0f} training images/s on "
               f"{dev.type}; sampling these grids took {time.perf_counter() - t0:.2f} s.")


def cifar(cfg: Settings) -> None:
    """Check a local CIFAR-10 folder (the data the GPU benchmarks train on)."""
    st.subheader("CIFAR-10 from a local folder")
    folder = st.text_input("Folder holding `cifar-10-batches-py/` (the official python "
                           "version, unpacked)", key="cifar_root")
    if not folder:
        st.info("Nothing is downloaded by this app. Point it at the unpacked official archive, "
                "or fetch it once with `flowviz.images.data.download_cifar(folder)` "
                "(MD5-checked). To train on it: `python -m flowviz image train --config run.json` "
                'with `"data": "cifar10", "root": "<folder>"` in run.json.')
        return
    try:
        x, _ = imdata.load_cifar(folder, train=False, limit=64)
    except imdata.ImageDataError as e:
        st.error(str(e))
        return
    st.image(to_grid(x[:32], 8, scale=2),
             caption=f"CIFAR-10 test images from {folder} (the data, not samples)")
