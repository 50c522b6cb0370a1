"""Home: what flowviz shows, and which page tells which section of the article."""

import streamlit as st
import torch

from flowviz.experiment import UPLOAD
from views.cache import exact_field
from views.state import settings, uploaded_points
from views.teach import ask, notice, verdict

st.title("flowviz — seeing fast generation with flow matching")
st.markdown(
    "Flow matching learns an ODE whose pairs are joined by **straight lines**, yet its sampling "
    "trajectories **curve**, so it still needs many solver steps. Each page tells one section of "
    "the article *Fast Generation with Flow Matching* on small 2-D problems you can change and "
    "retrain live; every number is computed, with the exact field of the data as the reference.")

notice("Training pairs are joined by straight lines, but the generator follows the *average* "
       "of all lines through a point, and that average bends. On every page, watch how far the "
       "paths bend and how many solver steps (NFE) the bend costs: each number is measured on "
       "the data chosen in the sidebar.", "§1.2, §2")

ONE_POINT = "All on one point"


def one_step_question() -> None:
    """The question every page builds on, answered by the exact field of the sidebar's data."""
    cfg = settings()
    if cfg.target == UPLOAD and uploaded_points() is None:
        return
    choice = ask(
        "home", "Flow matching trains on straight lines x_t = (1 − t) x0 + t x1. Take the best "
        "possible model, the exact field v* of the data in the sidebar, and generate with **one** "
        "Euler step from noise, x1 = x0 + v*(x0, 0). Where do the samples land?",
        ["Spread over the data: the lines are straight", ONE_POINT,
         "Spread like the noise, shifted onto the data"], "§2")
    if choice is None:
        return
    # One Euler step of the exact field from noise (article §2): v*(x, 0) = E[x1] − x.
    field = exact_field(cfg)
    x0 = torch.randn(500, 2, generator=torch.Generator().manual_seed(cfg.seed + 1))
    x1 = x0 + field(x0, 0.0)
    mean, spread = x1.mean(0), float(x1.std(0).norm())
    data_mean = field.data.mean(0)
    answer = ONE_POINT if spread < 0.05 * float(field.data.std(0).norm()) else \
        "Spread over the data: the lines are straight"
    verdict("home", answer,
            f"At t = 0, x_t = x0 says nothing about x1, so v*(x, 0) = E[x1] − x and every sample "
            f"lands on the data mean. Measured just now: 500 one-step samples sit at "
            f"({mean[0]:.2f}, {mean[1]:.2f}) with spread {spread:.1e}; the data mean is "
            f"({data_mean[0]:.2f}, {data_mean[1]:.2f}) and the data's spread "
            f"{float(field.data.std(0).norm()):.2f}. The straight lines are straight for each "
            "pair, not for the average flow: that is the whole story of the pages below.")


one_step_question()
st.subheader("The pages")
rows = [
    ("views/theatre.py", "Flow theatre", "§6.3.1",
     "The same noise carried to the data by every method at once, at the budget you choose, "
     "played in the browser; then one noise point followed under each method."),
    ("views/straight_pairs.py", "Straight pairs, curved flow", "§1.2, §2, §2.1",
     "Independent pairs cross; the exact field v*(x, t) = E[x1 − x0 | x_t = x] averages their "
     "directions, so its paths bend. A 1-rectified flow trained live learns that field."),
    ("views/diffusion_vs_fm.py", "Diffusion PF-ODE vs flow matching", "§1.1, §1.2",
     "The exact VP-diffusion PF-ODE beside the exact rectified flow on the same data: their "
     "endpoint error vs the number of function evaluations (NFE), and the speed that explains it."),
    ("views/reflow.py", "ReFlow: straightening", "§3, §3.1",
     "Train 1-RF, let it make its own pairs, train 2-RF on them: the pair lines stop crossing "
     "and one Euler step becomes enough."),
    ("views/instaflow.py", "InstaFlow: reflow + distill", "§4, §4.1-§4.4",
     "A conditional teacher, a conditional 2-RF that straightens it, and a one-step student "
     "distilled from it; a target whose parts have names plays the text prompt."),
    ("views/shortcut.py", "Shortcut models", "§5, §5.1, §5.2, §6.3.1",
     "One model s(x, t, d) that knows its step size: flow matching at d = 0 plus "
     "self-consistency, the whole 1…128-step family from one network."),
    ("views/meanflow.py", "MeanFlow", "§6, §6.1, §6.2",
     "The mean velocity u(x_t, t, r) instead of the instantaneous v: exact before any training, "
     "then trained live through the JVP identity u = v + (r − t) du/dt."),
    ("views/scoreboard.py", "Scoreboard: all methods", "§6.3.1",
     "Every method on one quality-vs-NFE chart (1 to 128 network calls) from the same noise, "
     "with the compute each needed."),
    ("views/scaling.py", "Scaling: images", "§4-§6 at image scale",
     "The same method files on a U-Net: digit presets trained on a GPU, sample grids at NFE "
     "1-128 from the same noise, latent flows and GPU figures."),
]
for path, title, section, what in rows:
    with st.container(border=True, gap="small"):
        with st.container(horizontal=True, vertical_alignment="center"):  # wraps, never clips
            st.page_link(path, label=f"**{title}**")
            st.caption(f"Article {section}")
        st.markdown(what)

st.caption(
    "Conventions: time runs from noise to data, $x_0 \\sim$ source (usually "
    "$\\mathcal N(0, I)$), $x_1 \\sim$ data, $x_t = (1-t)\\,x_0 + t\\,x_1$, target velocity "
    "$x_1 - x_0$. The sidebar's data, seed and device apply to every page.")
