"""Scaling: the same method files on images (article §4–§6 at image scale; issue 7).

1. Sample grids from one noise batch at NFE 1, 2, 4, ..., 128, one row per method: the digits
   presets (trained on a GPU by ``python -m flowviz image``), or a run trained live here.
2. Quality vs NFE: a Fréchet distance in the features of a digits classifier the project
   trained (not FID), with the share of confidently classified samples.
3. Class-conditional: classifier-free guidance on the conditional FM digits preset, one row per
   digit and one grid per guidance weight w, with the measured share classified as asked.
4. Throughput and memory: sampling here, and the GPU measurements of the benchmarks.
5. Published CIFAR-10 one-step FIDs, as a separate reference table.
"""

import json
import re
import time
from pathlib import Path

import pandas as pd
import streamlit as st
import torch

from flowviz import checkpoint, store
from flowviz.device import describe
from flowviz.images import data as imdata
from flowviz.images.experiment import (
    LABELS,
    NFES,
    ImageRun,
    build_image,
    class_labels,
    generate,
    noise,
)
from flowviz.images.fid import fid_available
from flowviz.images.frechet import METRIC
from flowviz.images.grid import to_grid
from flowviz.images.latent import (
    ENCODERS,
    LATENT_METHODS,
    LatentRun,
    build_latent,
    decoded,
    fit_encoder,
    latent_noise,
    reconstruction_mse,
)
from flowviz.models import DIGITS_UNET, n_params
from flowviz.train import OptimConfig
from flowviz.viz.style import base
from views.cache import cached
from views.charts import chart
from views.state import device, page_settings
from views.training import live_training

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ROOT / "assets" / "presets" / "images"
BENCH = ROOT / "benchmarks" / "images_h100.json"
GRAPHED = ROOT / "benchmarks" / "images_h200_graphed_targets.json"  # no-grad targets graphed
ORDER = ("fm", "reflow", "distill", "shortcut", "meanflow")
N_GRID = 16  # samples per grid (4 x 4)
CFG_PRESET = PRESETS / "digits-fm-cfg.pt"  # class-conditional FM (label dropout 0.1)
CFG_QUALITY = PRESETS / "cfg_quality.json"  # `image eval --guidance ...` of that preset


def fid_status() -> str:
    """Whether standard FID (flowviz.images.fid) can run on this machine, in words."""
    ok, why = fid_available()
    return ("Standard FID can run here: `python -m flowviz image eval <checkpoint> "
            "--classifier <classifier> --fid`." if ok else
            f"{why.split('. ')[0]}: not computed here (optional, see `requirements-fid.txt`).")


def step_ratios(rows: list[dict]) -> list[dict]:
    """Per mode of a bench_images run (the row name after the method): Shortcut's and
    MeanFlow's ms per step over FM's in that mode ('–' where one was not run); also with their
    no-grad targets launched kernel by kernel (rows named '... target ungraphed')."""
    cols = {"shortcut": "Shortcut / FM", "meanflow": "MeanFlow / FM",
            "shortcut ungraphed": "Shortcut, target ungraphed / FM",
            "meanflow ungraphed": "MeanFlow, JVP target ungraphed / FM"}
    by: dict[str, dict] = {}
    for r in rows:
        if "ms" in r and r.get("method") and "batch_size" not in r:
            name, method = r["name"], r["method"]
            if UNGRAPHED.search(name):
                name, method = UNGRAPHED.sub("", name), method + " ungraphed"
            mode = name.split(r["method"], 1)[1].strip()
            mode += "" if "compile" in mode else " eager"
            by.setdefault(mode, {})[method] = r["ms"]
    return [{"mode": mode, **{c: f"{v[m] / v['fm']:.2f}×" if m in v else "–"
                              for m, c in cols.items()}}
            for mode, v in by.items() if "fm" in v]


UNGRAPHED = re.compile(r" (JVP )?target ungraphed$")  # benchmarks/bench_images.py's suffix


def bench_rows(b: dict) -> pd.DataFrame:
    """A bench_images.py run (benchmarks/*.json): images/s and peak memory per row, DDP rows
    (flowviz.images.ddp) when the run has them."""
    rows = [{"what": r["name"], "images/s": round(r["img_s"]), "peak GiB": f"{r['peak_GiB']:.1f}"}
            for r in b["rows"] + b.get("memory", []) if "img_s" in r]
    rows += [{"what": f"DDP, {d['world']} GPU · {d['method']} {d['precision']} · batch "
                      f"{d['batch_per_gpu']}/GPU", "images/s": round(d["img_s"]),
              "peak GiB": "–"} for d in b.get("ddp", [])]  # not measured per rank
    return pd.DataFrame(rows)


ABOUT_ROWS = ("CIFAR-shaped batches (3×32×32, 128 unless stated), our U-Net {ours:.1f}M "
              "parameters, torchcfm's {peer:.1f}M. 'flowviz loop' rows include the project's NaN "
              "guard, clipping and EMA; 'plain loop' is the peer's recipe.")

CFG_WS = (0.0, 1.0, 2.0, 4.0)  # guidance weights shown
CFG_NFE = 32
CFG_PER_CLASS = 4  # samples per digit row (the same noise in every row and every w)
# Published one-step (1 NFE) FIDs on CIFAR-10: the papers' numbers, never measured here.
PUBLISHED = [
    ("2-rectified flow, 1 step", 12.21, "Liu, Gong & Liu 2022 (rectified flow), Table 1"),
    ("2-rectified flow + distill (InstaFlow's recipe)", 4.85,
     "Liu, Gong & Liu 2022 (rectified flow), Table 1"),
    ("MeanFlow, 1-NFE, from scratch", 2.92, "Geng et al. 2025 (Mean Flows), CIFAR-10 table"),
]

st.title("Scaling: the same methods on images")
st.caption("The objectives that trained the 2-D fields on the other pages train a U-Net on "
           "images here, unchanged: `flowviz.methods.fm`, `reflow`, `distill`, `shortcut` and "
           "`meanflow` only ever see tensors of shape (B, *dims).")
cfg = page_settings()


@st.cache_resource(show_spinner="Loading the digits presets…")
def load_presets() -> dict:
    """method -> (run, network) of every digits preset found in assets/presets/images."""
    out = {}
    for m in ORDER:
        p = PRESETS / f"digits-{m}.pt"
        if p.is_file():
            run, state = checkpoint.load(p, kind="image")
            out[m] = (run, state.sampler_model.eval())
    return out


def drawn(grid):
    """A stored sample grid (kept at scale 1 on disk) drawn 4x, crisp on a projector."""
    return grid.repeat(4, 0).repeat(4, 1)


def stamp(method: str) -> str:
    """The preset file's content digest: a retrained preset is sampled afresh."""
    return store.file_digest(str(PRESETS / f"digits-{method}.pt"))


@st.cache_data(show_spinner=False)
def measured_quality() -> pd.DataFrame:
    p = PRESETS / "quality.json"
    return pd.DataFrame(json.loads(p.read_text())) if p.is_file() else pd.DataFrame()


@cached(show_spinner="Sampling the presets (once: then kept on disk)…")
def grids(method: str, nfe_list: tuple, seed: int, stamp: str = "") -> dict:
    """NFE -> (uint8 grid, seconds) for a preset, all from the same noise, and "machine": where
    the seconds were measured. ``stamp``: the preset file's digest."""
    run, net = load_presets()[method]
    x0 = noise(run, N_GRID, seed)
    out = {}
    for k in nfe_list:
        if method == "distill" and k != 1:
            continue
        t0 = time.perf_counter()
        x = generate(run, net, x0, k)
        out[k] = (to_grid(x, 4), time.perf_counter() - t0)  # drawn 4x: kept small on disk
    out["machine"] = describe()
    return out


def grid_rows(rows: dict, nfe_list) -> None:
    """One row per method, one column per NFE."""
    head = st.columns([1.3] + [1] * len(nfe_list))
    head[0].markdown("**method**")
    for c, k in zip(head[1:], nfe_list, strict=True):
        c.markdown(f"**NFE {k}**")
    for label, g in rows.items():
        cols = st.columns([1.3] + [1] * len(nfe_list))
        cols[0].markdown(label)
        for c, k in zip(cols[1:], nfe_list, strict=True):
            if k in g:
                c.image(drawn(g[k][0]), caption=f"{1e3 * g[k][1]:.0f} ms",
                        width="stretch")
            else:
                c.caption("one-step only")


@st.cache_resource(show_spinner="Loading the class-conditional preset…")
def load_cfg_preset():
    """(run, network) of the class-conditional digits preset, or None."""
    if not CFG_PRESET.is_file():
        return None
    run, state = checkpoint.load(CFG_PRESET, kind="image")
    return run, state.sampler_model.eval()


@cached(show_spinner="Sampling the guided grids (once: then kept on disk)…")
def guidance_grids(ws: tuple, nfe: int, seed: int, stamp: str = "") -> dict:
    """w -> (uint8 grid: one row per class, CFG_PER_CLASS columns, seconds) from the
    class-conditional preset, the same noise in every row and for every w; "machine": where
    the seconds were measured. ``stamp``: the preset file's digest."""
    run, net = load_cfg_preset()
    k = run.model.n_classes
    x0 = noise(run, CFG_PER_CLASS, seed).repeat(k, 1, 1, 1)
    lab = class_labels(run, k).repeat_interleave(CFG_PER_CLASS)  # row c: label c
    out = {}
    for w in ws:
        t0 = time.perf_counter()
        x = generate(run, net, x0, nfe, lab, w)
        out[w] = (to_grid(x, CFG_PER_CLASS), time.perf_counter() - t0)  # drawn 4x
    out["machine"] = describe()
    return out


@st.cache_data(show_spinner=False)
def cfg_quality(stamp: str = "") -> pd.DataFrame:
    return pd.DataFrame(json.loads(CFG_QUALITY.read_text())) if CFG_QUALITY.is_file() \
        else pd.DataFrame()


def guidance_section(seed: int) -> None:
    """Class-conditional FM with classifier-free guidance: rows = digits, one grid per w."""
    st.subheader("Class-conditional: guidance")
    pre = load_cfg_preset()
    if pre is None:
        st.info("No class-conditional preset (assets/presets/images/digits-fm-cfg.pt): run "
                "`bash assets/presets/images/train.sh`.")
        return
    run, net = pre
    g = guidance_grids(CFG_WS, CFG_NFE, seed, store.file_digest(str(CFG_PRESET)))
    q = cfg_quality(store.file_digest(str(CFG_QUALITY)) if CFG_QUALITY.is_file() else "")
    q = q[q.nfe == CFG_NFE] if len(q) else q
    cols = st.columns(len(CFG_WS))
    for c, w in zip(cols, CFG_WS, strict=True):
        row = q[q.w == w] if len(q) else q
        how = (f" · classified as its row's digit {row.agree.iloc[0]:.1%}, classifier-feature "
               f"FD {row.fd.iloc[0]:.1f}" if len(row) else "")
        c.image(drawn(g[w][0]), width="stretch",
                caption=f"w = {w:g}{how}")
    tbl = q[["w", "agree", "agree_confident", "confident", "fd"]].rename(columns={
        "agree": "classified as conditioned", "agree_confident": "… with p ≥ 0.9",
        "confident": "any class, p ≥ 0.9", "fd": "classifier-feature FD"}) if len(q) else q
    if len(tbl):
        st.dataframe(tbl, hide_index=True)
    n = round(q.classes.map(sum).max() / q.confident.max()) if len(q) else 0
    st.caption(
        f"Rows: digits 0–{run.model.n_classes - 1} (the label given to the U-Net); "
        f"{CFG_PER_CLASS} samples per row from the same noise (seed {seed}) in every row and "
        f"grid; Euler, {CFG_NFE} steps of u = u(x, t | ∅) + w (u(x, t | c) − u(x, t | ∅)), "
        "two network calls each, one at w = 1 (`flowviz.methods.fm.guided`, the 2-D InstaFlow "
        "teacher's code). One network learned both fields: labels were dropped to the "
        f"\"no label\" token with probability {run.label_drop:g} while training "
        "(`drop_labels`). As w grows: at w = 0 the label is ignored (every row shows the same "
        "unconditional samples of that noise, so about one in ten is the row's digit); at "
        "w = 1 the plain conditional model; past 1 the samples are pushed away from the "
        "unconditional field, bolder and more alike within a row — the label is obeyed but "
        "variety shrinks and the distance to the real digits grows (table). "
        + (f"Figures: `python -m flowviz image eval --guidance …` on an H100 ({n} samples per "
           "w, `assets/presets/images/cfg_quality.json`), same classifier as above. "
           if len(q) else "")
        + f"Sampling these grids took {sum(g[w][1] for w in CFG_WS):.2f} s on {g['machine']}.")


def quality_fig(df: pd.DataFrame, col: str, title: str, log: bool):
    fig = base(title, height=420, square=False, xlabel="NFE (network calls)",
               ylabel="Fréchet distance" if col == "fd" else "share with p ≥ 0.9")
    for m in ORDER:
        d = df[df.method == m]
        if len(d):
            few = [f"{n} class{'es' if n > 1 else ''} only" if n < 10 else ""
                   for n in d.n_classes]  # confident but collapsed: say so on the point
            fig.add_scatter(x=d.nfe, y=d[col], name=LABELS[m], mode="lines+markers+text",
                            text=few, textposition="middle right",
                            marker=dict(size=9 if m == "distill" else 6))
    fig.update_xaxes(type="log", tickvals=list(NFES))
    fig.update_yaxes(type="log" if log else "linear")
    fig.update_layout(legend=dict(y=-0.25))
    return fig


source = st.radio("Data", ["Digits (scikit-learn, 8×8 upsampled to 16×16)",
                           "CIFAR-10 (a local folder)"], horizontal=True, key="img_data")
tab_presets, tab_live, tab_latent = st.tabs(["Presets (trained on a GPU)", "Train live",
                                              "Latent space (PCA / autoencoder)"])

if source.startswith("CIFAR"):
    folder = st.text_input("Folder holding `cifar-10-batches-py/` (the official python "
                           "version, unpacked)", key="cifar_root")
    if not folder:
        st.info("Nothing is downloaded by this app. Point it at the unpacked official archive, "
                "or fetch it once yourself with `flowviz.images.data.download_cifar(folder)` "
                "(MD5-checked). The digits presets below work offline.")
    else:
        try:
            xc, yc = imdata.load_cifar(folder, train=False, limit=64)
            st.image(to_grid(xc[:32], 8, scale=2), caption="CIFAR-10 test images from "
                     f"{folder} (the data, not samples)")
        except imdata.ImageDataError as e:
            st.error(str(e))

with tab_presets:
    presets = load_presets()
    if not presets:
        st.warning("No digits presets in assets/presets/images: run "
                   "`bash assets/presets/images/train.sh` (a GPU makes it minutes).")
    else:
        chosen = st.multiselect("Methods", [m for m in ORDER if m in presets],
                                default=[m for m in ORDER if m in presets],
                                format_func=LABELS.get, key="img_methods")
        shown = st.select_slider("NFEs shown", options=list(NFES), value=(1, 128),
                                 key="img_nfe")
        nfe_list = tuple(k for k in NFES if shown[0] <= k <= shown[1])
        st.subheader("The same noise, every method, every step count")
        rows = {LABELS[m]: grids(m, nfe_list, cfg.seed, stamp(m)) for m in chosen}
        grid_rows(rows, nfe_list)
        run0 = presets[chosen[0]][0] if chosen else next(iter(presets.values()))[0]
        st.caption(f"U-Net of {n_params(presets[ORDER[0]][1]) / 1e6:.2f}M parameters on "
                   f"{run0.model.dims} digits; each grid is {N_GRID} samples from seed "
                   f"{cfg.seed} (sidebar). Times are for the {N_GRID} samples, measured when the "
                   "grids were first computed, on "
                   + "; ".join(sorted({g["machine"] for g in rows.values()})) + ". "
                   "Configs: `assets/presets/images/*.json`, retrained by "
                   "`bash assets/presets/images/train.sh`.")

        st.subheader(f"Quality vs NFE: {METRIC}")
        q = measured_quality()
        if len(q):
            q = q[q.method.isin(chosen)]
            c1, c2 = st.columns(2)
            with c1:
                chart(quality_fig(q, "fd", "Classifier-feature Fréchet distance (lower is "
                                  "better)", True), key="img_fd")
            with c2:
                chart(quality_fig(q, "confident", "Share of samples the classifier labels "
                                  "with p ≥ 0.9", False), key="img_conf")
            st.caption("1000 samples per point, measured by `python -m flowviz image eval` on "
                       "an H200 (`assets/presets/images/quality.json`; the earlier H100 evaluation "
                       "of the other four presets gave the same figures). The features are those "
                       "of a small CNN trained here on the same digits (97.6 % held-out "
                       "accuracy): a Fréchet distance in its space, not FID and not comparable "
                       "with published FIDs. " + fid_status())
        guidance_section(cfg.seed)

with tab_live:
    st.markdown("Train one method on the digits here, with the CPU default U-Net "
                f"({DIGITS_UNET.base} channels; about a minute on a laptop for a first "
                "result). ReFlow and distillation need a teacher: they train from the FM "
                "preset.")
    c1, c2, c3 = st.columns(3)
    method = c1.selectbox("Method", ORDER, format_func=LABELS.get, key="live_method")
    steps = c2.select_slider("Steps", [100, 200, 400, 800, 1600], 400, key="live_steps")
    batch = c3.select_slider("Batch", [32, 64, 128], 64, key="live_batch")
    live = ImageRun(method=method, batch=batch, model=DIGITS_UNET,
                    teacher="digits-fm.pt" if method in ("reflow", "distill") else "",
                    optim=OptimConfig(steps=steps, lr=2e-3, warmup=min(100, steps // 4)))
    dev = device(cfg)

    def build():
        teacher = None
        if method in ("reflow", "distill"):
            teacher = load_presets()["fm"][1]
        run = live
        if teacher is not None:  # the teacher's architecture and a small pair set
            import dataclasses

            t_run = load_presets()["fm"][0]
            run = dataclasses.replace(live, model=t_run.model, reflow=dataclasses.replace(
                live.reflow, n_pairs=512, steps=16, chunk=512))
        return build_image(run, dev, teacher=teacher)

    state = live_training(f"img:{live.to_json()}", build, chunk=20, meta={"run": live})
    if state is not None and state.step > 0:
        run = state.meta.get("run", live)
        x0 = noise(run, N_GRID, cfg.seed, dev)
        ks = (1,) if method == "distill" else (1, 4, 16, 64)
        t0 = time.perf_counter()
        cols = st.columns(len(ks))
        for c, k in zip(cols, ks, strict=True):
            c.image(to_grid(generate(run, state.sampler_model, x0, k), 4, scale=4),
                    caption=f"NFE {k}", width="stretch")
        sec = state.seconds
        st.caption(f"{state.step} steps in {sec:.1f} s: {state.step * batch / max(sec, 1e-9):.0f}"
                   f" training images/s on {dev.type}; sampling all grids took "
                   f"{time.perf_counter() - t0:.2f} s.")


@st.cache_resource(show_spinner="Fitting the encoder…", max_entries=4)
def encoder(kind: str, k: int):
    x = imdata.digits(16)[0]
    e, fit = fit_encoder(LatentRun(encoder=kind, k=k), x)
    return e, fit, e.encode(x).detach()


LATENT_NFES = (1, 4, 16, 64)
LATENT_QUALITY = PRESETS / "latent-quality.json"  # `image eval` of the latent presets


def latent_path(method: str) -> Path:
    return PRESETS / f"latent-ae-{method}.pt"


def latent_grids(run, enc, flow, z0) -> dict:
    """NFE -> uint8 grid of the decoded samples from z0, and "sampling_seconds": all of them."""
    t0 = time.perf_counter()
    out = {k: to_grid(decoded(run, enc, flow, z0, k), 4) for k in LATENT_NFES}
    return {**out, "sampling_seconds": time.perf_counter() - t0}


@cached(show_spinner="Decoding the latent presets (once: then kept on disk)…")
def latent_overview(seed: int, stamp: str) -> dict:
    """What the latent presets tab shows, computed once (``stamp``: the files' digests): the
    shared autoencoder's settings and reconstructions, and per method its size, training and
    decoded grids from the same z0. A broken file raises CheckpointError; none: {}."""
    pre = {m: checkpoint.load_latent(latent_path(m)) for m in LATENT_METHODS
           if latent_path(m).is_file()}
    if not pre:
        return {}
    run, enc, _ = next(iter(pre.values()))
    return {"k": run.k, "size": run.size, "ae_steps": run.ae_steps, "first": run.method,
            "fit_seconds": enc.seconds, "machine": enc.machine, "recon": reconstruction(enc),
            "shared": all(same_weights(e.net, enc.net) for _, e, _ in pre.values()),
            "methods": {m: {"params": n_params(flow.sampler_model), "steps": flow.step,
                            "seconds": flow.seconds,
                            **latent_grids(r, e, flow.sampler_model, latent_noise(r, N_GRID, seed))}
                        for m, (r, e, flow) in pre.items()},
            "sampled_on": describe()}


@st.cache_data(show_spinner=False)
def latent_quality(stamp: str) -> pd.DataFrame:
    return pd.DataFrame(json.loads(LATENT_QUALITY.read_text())) if stamp else pd.DataFrame()


def measured(r) -> str:
    """One latent-quality.json row in words: FD, share confident, classes if fewer than 10."""
    few = f", {r.n_classes} classes only" if r.n_classes < 10 else ""
    return f"FD {r.fd:.1f} · {r.confident:.0%} confident{few}"


def latent_header(first: str) -> None:
    cols = st.columns([1.3] + [1] * len(LATENT_NFES))
    cols[0].markdown(first)
    for c, k in zip(cols[1:], LATENT_NFES, strict=True):
        c.markdown(f"**NFE {k}**, decoded")


def latent_row(label: str, g: dict, q: pd.DataFrame) -> None:
    """One method: its decoded grids at LATENT_NFES, each captioned with the measured quality
    at that NFE when ``q`` (its latent-quality.json sample rows) has it."""
    cols = st.columns([1.3] + [1] * len(LATENT_NFES))
    cols[0].markdown(label)
    for c, k in zip(cols[1:], LATENT_NFES, strict=True):
        r = q[q.nfe == k] if len(q) else q
        c.image(drawn(g[k]), caption=measured(next(r.itertuples())) if len(r) else None,
                width="stretch")


def reconstruction(enc) -> dict:
    """16 digits and their decoded codes D(E(x)) as grids, and the MSE over all digits."""
    x = imdata.digits(16)[0]
    return {"digits": to_grid(x[:16], 4), "decoded": to_grid(enc.reconstruct(x[:16]), 4),
            "n": len(x),
            "mse": reconstruction_mse(enc, x)}


def reconstructions(r: dict, label: str, fit: str) -> None:
    """16 digits beside their decoded codes D(E(x)), tiles as large as the sample grids'."""
    cols = st.columns([1.3, 1, 1, 2])
    cols[0].markdown(label)
    cols[1].image(drawn(r["digits"]), caption="Digits x", width="stretch")
    cols[2].image(drawn(r["decoded"]), width="stretch", caption="Decoded codes D(E(x))")
    cols[3].caption(f"Reconstruction MSE {r['mse']:.4f} over all {r['n']} digits (pixels in "
                    f"[−1, 1]){fit}.")


def latent_quality_table(q: pd.DataFrame) -> pd.DataFrame:
    """NFE rows; per method the Fréchet distance and the share labelled with p ≥ 0.9."""
    s = q[q.what == "samples"]
    cols = {LABELS[m]: {int(r.nfe): measured(r) for r in s[s.method == m].itertuples()}
            for m in LATENT_METHODS if (s.method == m).any()}
    return pd.DataFrame(cols).rename_axis("NFE").reset_index()


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[n], sb[n]) for n in sa)


def latent_presets_view(seed: int) -> None:
    """The latent presets: reconstructions, decoded grids per method and NFE, quality table."""
    stamp = "".join(store.file_digest(str(latent_path(m))) for m in LATENT_METHODS
                    if latent_path(m).is_file())
    try:
        ov = latent_overview(seed, stamp)
    except checkpoint.CheckpointError as e:
        st.error(f"A latent preset could not be loaded: {e} Retrain them with "
                 "`bash assets/presets/images/train_latent.sh`, or train live.")
        return
    if not ov:
        st.info("No latent presets (assets/presets/images/latent-ae-*.pt): run "
                "`bash assets/presets/images/train_latent.sh`, or train live.")
        return
    q = latent_quality(store.file_digest(str(LATENT_QUALITY)) if LATENT_QUALITY.is_file()
                       else "")
    k = ov["k"]
    st.markdown(f"**Presets trained on a CPU**: one conv autoencoder (k = {k} codes of the "
                f"{ov['size']}×{ov['size']} digits), then flow matching, Shortcut and MeanFlow "
                "on its codes; every sample below is a decoded code D(z1).")
    ref = {r.what: r for r in q[q.checkpoint.str.endswith(latent_path(ov["first"]).name)]
           .itertuples()} if len(q) else {}
    reconstructions(ov["recon"], f"**Autoencoder**  \nk = {k}, {ov['ae_steps']} steps, "
                    f"{ov['fit_seconds']:.0f} s", "" if not ref else
                    f"; {METRIC} of {ref['reconstruction'].n} reconstructions "
                    f"{ref['reconstruction'].fd:.1f} (the first {ref['data'].n} digits "
                    f"themselves: {ref['data'].fd:.1f})")
    latent_header("**method** (flow training)")
    for m, g in ov["methods"].items():
        latent_row(f"{LABELS[m]}  \n{g['params'] / 1e3:.0f}k parameters  \n"
                   f"{g['steps']} steps in {g['seconds']:.0f} s", g,
                   q[(q.what == "samples") & (q.method == m)] if len(q) else q)
    took = sum(g["sampling_seconds"] for g in ov["methods"].values())
    sizes = ", ".join(f"{latent_path(m).name} {latent_path(m).stat().st_size / 2**10:.0f} KiB"
                      for m in ov["methods"])
    st.caption(
        f"The same {N_GRID} codes z0 ~ N(0, I) (seed {seed}) for every method and NFE. Trained "
        f"on {ov['machine']} by `python -m flowviz image latent --config "
        "assets/presets/images/latent-ae-<method>.json` (all three: "
        "`bash assets/presets/images/train_latent.sh`). The autoencoder "
        + ("is shared by the flows (identical weights); " if ov["shared"] else
           "differs between the presets; ")
        + f"each flow is the 2-D pages' MLP on the {k} code dimensions. Files: {sizes}. "
        f"Sampling and decoding these grids took {took:.2f} s on {ov['sampled_on']}.")
    if len(q):
        st.markdown("**Quality vs NFE of the decoded samples**")
        st.dataframe(latent_quality_table(q), hide_index=True)
        st.caption(f"FD: {METRIC} (not FID) to all {len(imdata.digits(16)[0])} digits; "
                   "confident: the share of samples the digits classifier labels with "
                   "p ≥ 0.9. "
                   f"{int(q.n.max())} samples per point, by `python -m flowviz image "
                   "eval` (`assets/presets/images/latent-quality.json`).")


with tab_latent:
    st.markdown("Flows can also run on **codes** z = E(x) of the images and be decoded for "
                "display (the latent recipe behind InstaFlow's Stable Diffusion, article §4). "
                "The network is then the 2-D pages' MLP with one input per code dimension.")
    lat_mode = st.radio("Latent runs", ["Presets (trained on a CPU)", "Train live"],
                        horizontal=True, key="lat_mode")
    if lat_mode == "Train live":
        c1, c2, c3 = st.columns(3)
        enc_kind = c1.selectbox("Encoder", ENCODERS, key="lat_enc", format_func={
            "pca": "PCA (instant, linear)",
            "ae": f"Conv autoencoder (trained here, {LatentRun().ae_steps} steps)"}.get)
        k = c2.select_slider("Code size k", [4, 8, 16, 32], 16, key="lat_k")
        lmethod = c3.selectbox("Method", LATENT_METHODS, format_func=LABELS.get,
                               key="lat_method")
        enc, fit, z = encoder(enc_kind, k)
        name = "PCA" if enc_kind == "pca" else "Autoencoder"
        reconstructions(reconstruction(enc), f"**{name}**  \nk = {k}, fitted in "
                        f"{enc.seconds:.1f} s", f"; variance kept {fit:.1%}" if enc_kind == "pca"
                        else "")
        lrun = LatentRun(encoder=enc_kind, k=k, method=lmethod)
        lstate = live_training(f"lat:{enc_kind}:{k}:{lmethod}", lambda: build_latent(lrun, z),
                               chunk=100, meta={"run": lrun})
        if lstate is not None and lstate.step > 0:
            z0 = latent_noise(lrun, N_GRID, cfg.seed)
            latent_header("**method**")
            g = latent_grids(lrun, enc, lstate.sampler_model, z0)
            latent_row(f"{LABELS[lmethod]}  \n{lstate.step} steps, live", g, pd.DataFrame())
    else:
        latent_presets_view(cfg.seed)

st.subheader("Throughput and memory on a GPU (measured)")
for path, when in ((GRAPHED, "Latest run"), (BENCH, "Earlier run, with torch.compile's CUDA "
                                                    "graphs and two GPUs")):
    if path.is_file():
        b = json.loads(path.read_text())
        info = b["info"]
        st.markdown(f"**{when}: {info['device']}, torch {info['torch']}**")
        df = bench_rows(b)
        st.dataframe(df, hide_index=True, height=35 * (len(df) + 1) + 3)  # every row, no scroll
        st.caption(ABOUT_ROWS.format(ours=info["ours_params"] / 1e6,
                                     peer=info.get("peer_params", 0) / 1e6)
                   + ("" if path == GRAPHED else " Its MeanFlow and eager Shortcut rows "
                      "launch their targets kernel by kernel (before they were replayed as "
                      "CUDA graphs).")
                   + " Details and misses: benchmarks/RESULTS.md.")
if GRAPHED.is_file():
    g = json.loads(GRAPHED.read_text())
    st.markdown("**A step's cost against flow matching's, in the same mode and run**")
    st.dataframe(pd.DataFrame(step_ratios(g["rows"])), hide_index=True)
    st.caption(f"{g['info']['device']}, torch {g['info']['torch']}, batch {g['info']['batch']}: "
               "ms per step of Shortcut and MeanFlow divided by FM's (targets ≤ 1.5× and "
               "≤ 2.5×). Their target rows are fixed counts. On a GPU their no-grad targets "
               "(Shortcut's half steps; MeanFlow's JVP, ~700 small kernels) are replayed as "
               "one CUDA graph each, compiled or not; the 'ungraphed' columns launch them "
               "kernel by kernel. Under torch.compile's own CUDA graphs (reduce-overhead), "
               "Shortcut's target is compiled with the network. Compiled modes are absent: FM's "
               "compiled rows failed in this run (a bug, since fixed; a rerun's figures are in "
               "benchmarks/RESULTS.md). Eager steps are launch-bound and move with the host's "
               "load.")
if torch.cuda.is_available():
    st.caption(f"This machine's GPU: peak memory so far "
               f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB.")

st.subheader("Published CIFAR-10 one-step FIDs (reference, not measured here)")
st.dataframe(pd.DataFrame(PUBLISHED, columns=["method", "FID (1 NFE)", "source"]),
             hide_index=True)
st.caption("Standard FID with Inception features on 50 000 CIFAR-10 samples, as published. "
           "The numbers above this table are measured by this project on digits with its own "
           "classifier and cannot be compared with these.")
