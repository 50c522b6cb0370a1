"""What the Scaling page reports about the image runs, computed apart from the page: the presets'
sample grids from one noise, quality vs NFE from their evaluations (``python -m flowviz image
eval``: quality.json, cfg_quality.json, latent-quality.json), the latent presets' overview and
the GPU benchmark runs (benchmarks/bench_images.py's JSON)."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import torch

from flowviz import checkpoint
from flowviz.device import describe
from flowviz.images import data as imdata
from flowviz.images.experiment import LABELS, class_labels, generate, nfes, noise
from flowviz.images.grid import to_grid
from flowviz.images.latent import decoded, latent_noise, reconstruction_mse
from flowviz.models import n_params

ONE_STEP = ("distill", "shortcut", "meanflow")  # trained to jump: judged at one network call
ALL_CLASSES = 10  # digits: fewer classes among confident samples means collapse

# Published one-step (1 NFE) FIDs on CIFAR-10: the papers' numbers, never measured here.
PUBLISHED = [
    ("2-rectified flow, 1 step", 12.21, "Liu, Gong & Liu 2022 (rectified flow), Table 1"),
    ("2-rectified flow + distill (InstaFlow's recipe)", 4.85,
     "Liu, Gong & Liu 2022 (rectified flow), Table 1"),
    ("MeanFlow, 1-NFE, from scratch", 2.92, "Geng et al. 2025 (Mean Flows), CIFAR-10 table"),
]


# --- sample grids --------------------------------------------------------------------------------
def timed_grid(sample, ncol: int) -> tuple:
    """(uint8 grid of ``sample()``'s images, seconds the sampling took)."""
    t0 = time.perf_counter()
    x = sample()
    return to_grid(x, ncol), time.perf_counter() - t0


def sample_grids(run, net, nfe_list, n: int, seed: int, ncol: int = 4) -> dict:
    """NFE -> (grid, seconds) of n samples from the same noise at each NFE the run can take
    (the distilled student: 1 only); "machine": where the seconds were measured."""
    x0 = noise(run, n, seed)
    out = {k: timed_grid(lambda k=k: generate(run, net, x0, k), ncol)
           for k in nfes(run, nfe_list)}
    return {**out, "machine": describe()}


def guided_grids(run, net, ws, nfe: int, per_class: int, seed: int) -> dict:
    """w -> (grid, seconds) of classifier-free guided samples, one row per class label with
    ``per_class`` samples, the same noise in every row and for every w; "machine"."""
    k = run.model.n_classes
    x0 = noise(run, per_class, seed).repeat(k, 1, 1, 1)
    label = class_labels(run, k).repeat_interleave(per_class)  # row c: label c
    out = {w: timed_grid(lambda w=w: generate(run, net, x0, nfe, label, w), per_class)
           for w in ws}
    return {**out, "machine": describe()}


# --- quality vs NFE ------------------------------------------------------------------------------
def quality_curves(rows: list[dict], col: str = "fd", methods=tuple(LABELS)) -> dict:
    """method label -> (NFEs, values of ``col``) from quality.json rows, in NFE order."""
    out = {}
    for m in methods:
        pts = sorted((r["nfe"], r[col]) for r in rows if r["method"] == m)
        if pts:
            out[LABELS[m]] = ([k for k, _ in pts], [v for _, v in pts])
    return out


def collapsed(rows: list[dict], col: str = "fd") -> list[tuple]:
    """(NFE, value, n_classes) of the points whose confident samples cover fewer than all
    classes: a low spread there is collapse (e.g. one-step FM: every sample the mean digit)."""
    return [(r["nfe"], r[col], r["n_classes"]) for r in rows if r["n_classes"] < ALL_CLASSES]


def one_step_reach(rows: list[dict], reference: str = "fm") -> dict:
    """How close the best one-step method comes to ``reference`` at its largest NFE: the
    Fréchet distances, their ratio, and the fewest reference NFEs that do as well (None)."""
    ref = sorted((r["nfe"], r["fd"], r["n_classes"]) for r in rows if r["method"] == reference)
    jumps = [r for r in rows if r["method"] in ONE_STEP and r["nfe"] == 1]
    if not ref or not jumps:
        raise ValueError(f"need {reference} rows and one-step rows of {ONE_STEP}")
    best = min(jumps, key=lambda r: r["fd"])
    return {"method": best["method"], "fd": best["fd"], "ref_nfe": ref[-1][0],
            "ref_fd": ref[-1][1], "ratio": best["fd"] / ref[-1][1],
            "ref_fd_1": ref[0][1], "ref_classes_1": ref[0][2],
            "matched_at": next((k for k, fd, _ in ref if fd <= best["fd"]), None)}


def decade_span(lo: float, hi: float) -> tuple[float, float]:
    """The powers of ten around [lo, hi] (lo > 0), with hi moved up a decade when it sits on
    the top one: a log axis over whole decades, with room for a label above the highest point."""
    return 10.0 ** math.floor(math.log10(lo)), 10.0 ** (math.floor(math.log10(hi)) + 1)


def reach_class(ratio: float, close: float = 2.0) -> str:
    """'better', 'close' (within ``close``×) or 'far': a one-step distance over the reference's."""
    return "better" if ratio < 1 else "close" if ratio <= close else "far"


def guidance_table(rows: list[dict], nfe: int) -> list[dict]:
    """cfg_quality.json rows at ``nfe``, one per guidance weight w, in reader's columns."""
    return [{"w": r["w"], "classified as conditioned": f"{r['agree']:.1%}",
             "… with p ≥ 0.9": f"{r['agree_confident']:.1%}",
             "any class, p ≥ 0.9": f"{r['confident']:.1%}",
             "classifier-feature FD": f"{r['fd']:.1f}"}
            for r in sorted(rows, key=lambda r: r["w"]) if r["nfe"] == nfe]


# --- latent flows --------------------------------------------------------------------------------
def measured(r: dict) -> str:
    """One latent-quality.json row in words: FD, share confident, classes if not all."""
    few = f", {r['n_classes']} classes only" if r["n_classes"] < ALL_CLASSES else ""
    return f"FD {r['fd']:.1f} · {r['confident']:.0%} confident{few}"


def latent_quality_table(rows: list[dict], methods) -> list[dict]:
    """One row per NFE; per method (its label) its samples' measured quality in words."""
    s = [r for r in rows if r["what"] == "samples" and r["method"] in methods]
    by = {m: {r["nfe"]: measured(r) for r in s if r["method"] == m} for m in methods}
    return [{"NFE": k, **{LABELS[m]: by[m].get(k, "–") for m in methods if by[m]}}
            for k in sorted({r["nfe"] for r in s})]


def reconstruction(enc, n_shown: int = 16) -> dict:
    """n_shown digits and their decoded codes D(E(x)) as grids, and the MSE over all digits."""
    x = imdata.digits(16)[0]
    return {"digits": to_grid(x[:n_shown], 4), "decoded": to_grid(enc.reconstruct(x[:n_shown]), 4),
            "n": len(x), "mse": reconstruction_mse(enc, x)}


def latent_grids(run, enc, flow, z0, nfe_list) -> dict:
    """NFE -> uint8 grid of the decoded samples from z0, and "sampling_seconds": all of them."""
    t0 = time.perf_counter()
    out = {k: to_grid(decoded(run, enc, flow, z0, k), 4) for k in nfe_list}
    return {**out, "sampling_seconds": time.perf_counter() - t0}


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[n], sb[n]) for n in sa)


def latent_overview(paths: dict, seed: int, n: int, nfe_list) -> dict:
    """The latent presets (method -> checkpoint path) at a glance: the first one's autoencoder
    settings and reconstructions, whether all share it, and per method its size, training and
    decoded grids from the same n codes z0. A broken file raises CheckpointError; none: {}."""
    pre = {m: checkpoint.load_latent(p) for m, p in paths.items()}
    if not pre:
        return {}
    run, enc, _ = next(iter(pre.values()))
    return {"k": run.k, "size": run.size, "ae_steps": run.ae_steps, "first": run.method,
            "fit_seconds": enc.seconds, "machine": enc.machine, "recon": reconstruction(enc),
            "shared": all(same_weights(e.net, enc.net) for _, e, _ in pre.values()),
            "methods": {m: {"params": n_params(flow.sampler_model), "steps": flow.step,
                            "seconds": flow.seconds,
                            **latent_grids(r, e, flow.sampler_model, latent_noise(r, n, seed),
                                           nfe_list)}
                        for m, (r, e, flow) in pre.items()},
            "sampled_on": describe()}


# --- GPU benchmarks (benchmarks/bench_images.py) -------------------------------------------------
UNGRAPHED = re.compile(r" (JVP )?target ungraphed$")  # bench_images.py's suffix for the rows
# whose no-grad targets launch kernel by kernel instead of replaying one CUDA graph
STEP_METHODS = ("fm", "shortcut", "meanflow")


def method_steps(bench: dict, precision: str = "fp32") -> list[dict]:
    """Per method, eager training steps of one bench run: images/s (fp32, bf16), peak memory,
    and a step's cost over flow matching's in ``precision`` (also with the target ungraphed)."""
    eager = [r for r in bench["rows"] if "ms" in r and r.get("method") in STEP_METHODS
             and not r.get("compile") and "batch_size" not in r]
    plain = {(r["method"], r["precision"]): r for r in eager if not UNGRAPHED.search(r["name"])}
    loose = {(r["method"], r["precision"]): r for r in eager if UNGRAPHED.search(r["name"])}
    fm = plain.get(("fm", precision))
    out = []
    for m in STEP_METHODS:
        row = {"method": LABELS[m]}
        for p in ("fp32", "bf16"):
            row[f"images/s ({p})"] = f"{plain[m, p]['img_s']:.0f}" if (m, p) in plain else "–"
        bf = plain.get((m, "bf16"))
        row["peak GiB (bf16)"] = f"{bf['peak_GiB']:.1f}" if bf else "–"
        for col, src in (("step cost vs FM", plain), ("… target ungraphed", loose)):
            r = src.get((m, precision))
            row[col] = f"{r['ms'] / fm['ms']:.2f}×" if r and fm else "–"
        out.append(row)
    return out


def peer_rows(bench: dict) -> list[dict]:
    """The plain-loop rows (no NaN guard, clipping or EMA): this project's U-Net and the peer's
    (torchcfm's), images/s in fp32 and bf16."""
    info, out = bench["info"], {}
    for r in bench["rows"]:
        if ": plain loop " in r["name"] and "img_s" in r:
            who, p = r["name"].split(": plain loop ")
            ours = who == "ours"
            row = out.setdefault(who, {
                "U-Net": "flowviz" if ours else who,
                "parameters (M)": round(info["ours_params" if ours else "peer_params"] / 1e6, 1)})
            row[f"images/s ({p})"] = round(r["img_s"])
    return list(out.values())


def ddp_rows(bench: dict) -> list[dict]:
    """Data-parallel runs (flowviz.images.ddp): images/s on 1 and 2 GPUs per method and
    precision, and the speed-up."""
    by: dict = {}
    for d in bench.get("ddp", []):
        run = (d["method"], d["precision"], d["batch_per_gpu"])
        by.setdefault(run, {})[d["world"]] = d["img_s"]
    return [{"run": f"{LABELS[m]}, {p}, batch {b} per GPU",
             "1 GPU images/s": round(w[1]), "2 GPUs images/s": round(w[2]),
             "speed-up": f"{w[2] / w[1]:.2f}×"}
            for (m, p, b), w in by.items() if 1 in w and 2 in w]


def read_json(path: Path):
    """A JSON file's value, or [] when it is absent (a preset evaluation not run yet)."""
    return json.loads(Path(path).read_text()) if Path(path).is_file() else []
