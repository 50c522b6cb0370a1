"""Scaling: the same method files on images (article §4–§6 at image scale).

The lesson: flow matching's U-Net, trained on digits, needs many network calls (its samples from
one noise at NFE 1…128); the question (how close do the methods trained to jump come in one
call?); the other presets' rows and their measured quality vs NFE answer it. Deeper: class
guidance, live training, a CIFAR-10 folder, latent flows, GPU measurements, published FIDs.
"""

import streamlit as st

from flowviz.images import report
from flowviz.images.experiment import LABELS, NFES
from flowviz.images.frechet import METRIC
from flowviz.viz.figures import quality_vs_nfe_fig
from flowviz.viz.style import OTHER, log_axis
from views import scaling_images, scaling_latent, scaling_reference
from views.charts import chart
from views.scaling_grids import (
    ORDER,
    PRESETS,
    grid_header,
    grid_rows,
    grids,
    load_presets,
    preset_path,
    stamp,
)
from views.state import settings
from views.teach import ask, deeper, verdict, waiting

QUALITY = PRESETS / "quality.json"  # `python -m flowviz image eval` of the digits presets
CHOICES = {"far": "Far off: more than 2× its distance at 128 calls",
           "close": "Close: within 2× of it",
           "better": "Better than flow matching at 128 calls"}
DEEPER = {"Class guidance": scaling_images.guidance, "Train live": scaling_images.live,
          "CIFAR-10 data": scaling_images.cifar, "Latent flows": scaling_latent.latent,
          "GPU throughput": scaling_reference.gpu, "Published FIDs": scaling_reference.published}


def intro() -> None:
    st.title("Scaling: the same methods on images")
    st.caption("The objectives that trained the 2-D fields on the other pages train a U-Net on "
               "8×8 digits (upsampled to 16×16) here, unchanged: `flowviz.methods` only ever "
               "sees tensors of shape (B, *dims). Every grid below starts from the same 16 "
               "noise images.")


def sample_all(presets: dict, seed: int) -> dict:
    """label -> grids of every preset (read from the store: one look-up each, so that the rows
    revealed after the question are there at once)."""
    return {LABELS[m]: grids(m, NFES, seed, stamp(preset_path(m))) for m in ORDER if m in presets}


def flow_matching_row(rows: dict) -> None:
    st.subheader("Flow matching needs many steps")
    grid_header("**method**", [f"NFE {k}" for k in NFES])
    grid_rows({k: v for k, v in rows.items() if k == LABELS["fm"]}, NFES)
    st.caption("NFE: network calls (Euler steps); under each grid the time its 16 samples "
               f"took on {rows[LABELS['fm']]['machine']}. One call gives the average digit.")


def question() -> str | None:
    return ask("scaling", "Shortcut, MeanFlow and the distilled 2-RF student are trained to "
               "jump. With **one** network call, how close do they come to flow matching's "
               f"quality at 128 calls ({METRIC}, lower is better)?",
               list(CHOICES.values()), section="§5–§6")


def quality_chart(rows: list[dict]) -> None:
    fig = quality_vs_nfe_fig(report.quality_curves(rows), "Fréchet distance",
                             "Quality vs NFE (lower is better)", height=420)
    for nfe, fd, k in report.collapsed(rows):  # low spread there is collapse: say so
        fig.add_scatter(x=[nfe], y=[fd], mode="text", text=[f"  {k} class only"],
                        textposition="middle right", textfont=dict(color=OTHER),
                        showlegend=False, hoverinfo="skip")
    fds = [r["fd"] for r in rows]
    log_axis(fig, "y", *report.decade_span(min(fds), max(fds)))  # whole decades, room above
    chart(fig, key="img_fd")


def answer(rows: dict, quality: list[dict]) -> None:
    """The other presets' rows from the same noise, quality vs NFE, and the verdict."""
    st.subheader("The methods trained to jump")
    grid_header("**method**", [f"NFE {k}" for k in NFES])
    grid_rows({k: v for k, v in rows.items() if k != LABELS["fm"]}, NFES)
    if not quality:
        st.info("No evaluation of the presets (assets/presets/images/quality.json).")
        return
    left, right = st.columns([3, 2], vertical_alignment="center")
    with left:
        quality_chart(quality)
    with right:
        reveal_verdict(quality)


def reveal_verdict(quality: list[dict]) -> None:
    reach = report.one_step_reach(quality)
    matched = (f"flow matching needs {reach['matched_at']} calls to do as well"
               if reach["matched_at"] else "flow matching never does as well")
    verdict("scaling", CHOICES[report.reach_class(reach["ratio"])],
            f"In one call {LABELS[reach['method']]} reaches a Fréchet distance of "
            f"{reach['fd']:.1f}, {reach['ratio']:.1f}× flow matching's {reach['ref_fd']:.1f} "
            f"at {reach['ref_nfe']} calls; {matched}, and in one call it gives "
            f"{reach['ref_fd_1']:.0f} (the average digit). The jump was learned in training: "
            "sampling is then one network call.")
    st.caption(f"{METRIC[0].upper() + METRIC[1:]}: 1000 samples per point "
               "(`assets/presets/images/quality.json`, by `python -m flowviz image eval`) in the "
               "features of a small CNN trained on the same digits; not FID, and not comparable "
               "with published FIDs.")


cfg = settings()  # images only: the sidebar's 2-D data (or an upload) does not apply here
intro()
presets = load_presets()
if "fm" not in presets:
    st.warning("No digits presets in assets/presets/images: run "
               "`bash assets/presets/images/train.sh` (a GPU makes it minutes).")
else:
    rows = sample_all(presets, cfg.seed)
    flow_matching_row(rows)
    if question() is None:
        waiting()
    else:
        answer(rows, report.read_json(QUALITY))
section = deeper("scaling_deeper", list(DEEPER))
if section:
    DEEPER[section](cfg)
