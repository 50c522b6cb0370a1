"""Home: what flowviz shows, and which page tells which section of the article."""

import streamlit as st

st.title("flowviz — seeing fast generation with flow matching")
st.markdown(
    "Flow matching learns an ODE whose pairs are joined by **straight lines**, yet its sampling "
    "trajectories **curve**, so it still needs many solver steps. Each page below tells one "
    "section of the article *Fast Generation with Flow Matching* on small 2-D problems you can "
    "change and retrain live, on a laptop CPU. Every curve and number is computed, not drawn: "
    "the exact marginal field of the data is the reference for every claim.")

st.subheader("The pages")
rows = [
    ("pages/straight_pairs.py", "Straight pairs, curved flow", "§1.2, §2, §2.1",
     "Independent pairs cross; the exact field v*(x, t) = E[x1 − x0 | x_t = x] averages their "
     "directions, and its trajectories bend. Probe any point, then train a 1-rectified flow "
     "live and compare it with the exact field, or straighten it with minibatch OT pairs."),
    ("pages/diffusion_vs_fm.py", "Diffusion PF-ODE vs flow matching", "§1.1, §1.2",
     "The exact VP-diffusion PF-ODE beside the exact rectified flow on the same data: "
     "trajectories, speed over time, and quality vs number of function evaluations (NFE) for "
     "Euler, Heun, RK4 and adaptive solvers."),
]
for path, title, section, what in rows:
    with st.container(border=True):
        c1, c2 = st.columns([1, 3])
        c1.page_link(path, label=f"**{title}**")
        c1.caption(f"Article {section}")
        c2.markdown(what)

st.subheader("Coming next")
st.markdown(
    "- **ReFlow** (§3, §3.1): k-rectified flow and the improved training choices.\n"
    "- **InstaFlow** (§4): conditional reflow, one-step distillation, and its coverage problem.\n"
    "- **Shortcut models** (§5): one step-size-conditioned model for 1 to 128 steps.\n"
    "- **MeanFlow** (§6): mean vs instantaneous velocity, the JVP identity, one-step sampling.\n"
    "- **Scaling** to digits, CIFAR-10 and latents on a GPU.")

st.subheader("Conventions")
st.markdown(
    "Time runs from noise to data: $x_0 \\sim$ source (usually $\\mathcal N(0, I)$), "
    "$x_1 \\sim$ data, $x_t = (1-t)\\,x_0 + t\\,x_1$, target velocity $x_1 - x_0$. "
    "The sidebar's data, seed and device apply to every page.")
