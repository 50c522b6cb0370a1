"""Scaling, deeper: what a training step costs on a GPU (benchmarks/bench_images.py's runs,
measured on an H200 and, with two GPUs, an H100) and the published CIFAR-10 one-step FIDs."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import torch

from flowviz.images import report
from flowviz.images.fid import fid_available
from views.state import Settings

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
LATEST = BENCH / "images_h200_graphed_targets.json"  # no-grad targets replayed as CUDA graphs
TWO_GPUS = BENCH / "images_h100.json"  # the run with data-parallel rows


def gpu(cfg: Settings) -> None:
    st.subheader("What a training step costs on a GPU")
    if not LATEST.is_file():
        st.info("No benchmark run in benchmarks/ (`python benchmarks/bench_images.py`).")
        return
    b = report.read_json(LATEST)
    info = b["info"]
    st.markdown(f"**Per method** · {info['device']}, CIFAR-shaped batches of {info['batch']} "
                f"(3×32×32), a U-Net of {info['ours_params'] / 1e6:.1f}M parameters")
    st.dataframe(report.method_steps(b), hide_index=True)
    st.caption("Shortcut's and MeanFlow's targets need extra no-grad network calls (half steps; "
               "a JVP), so a step costs more than flow matching's, but far less than their "
               "saving at sampling time. 'Target ungraphed': those extra calls launched kernel "
               "by kernel instead of replayed as one CUDA graph.")
    st.markdown("**The same U-Net as a standard implementation** (plain training loop)")
    st.dataframe(report.peer_rows(b), hide_index=True)
    two = report.read_json(TWO_GPUS) or {}
    if ddp := report.ddp_rows(two):
        st.markdown(f"**Two GPUs, data-parallel** · {two['info']['device']}")
        st.dataframe(ddp, hide_index=True)
    here = (f" This machine's GPU: peak memory so far "
            f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB."
            if torch.cuda.is_available() else "")
    st.caption("Measured by `benchmarks/bench_images.py`; every run, with compiled modes and "
               "what went wrong, in benchmarks/RESULTS.md." + here)


def fid_status() -> str:
    """Whether standard FID (flowviz.images.fid) can run on this machine, in words."""
    ok, why = fid_available()
    return ("Standard FID can run here: `python -m flowviz image eval <checkpoint> "
            "--classifier <classifier> --fid`." if ok else
            f"{why.split('. ')[0]}: not computed here (optional, see `requirements-fid.txt`).")


def published(cfg: Settings) -> None:
    st.subheader("Published CIFAR-10 one-step FIDs")
    st.dataframe([{"method": m, "FID (1 NFE)": f, "source": s} for m, f, s in report.PUBLISHED],
                 hide_index=True)
    st.caption("Standard FID (Inception features, 50 000 samples), as the papers report it: not "
               "measured here. The digits figures on this page use a small digits classifier's "
               "features instead and cannot be compared with these. " + fid_status())
