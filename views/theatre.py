"""Flow theatre: the same noise carried to the data by every method at once (article §6.3.1).

Each method moves its points with its own sampler at the chosen budget (k Euler steps, k
shortcut steps, one jump); the browser plays them (a small player: no server call per frame).
Then one noise point is followed under every method.
"""

import streamlit as st

from flowviz import theatre as th
from flowviz.viz.theatre import theatre_html
from views.present import FONT_SCALE, HEIGHT_SCALE, presenting
from views.state import settings
from views.teach import ask, verdict, waiting
from views.theatre_particle import cast, exports, follow_particle

NFES = [1, 2, 3, 4, 8, 16, 32, 64]
SIZES = [100, 200, 400, 800]
LABELS = {v: k for k, v in th.METHODS.items()}
QUESTION = ["1-RF", "2-RF", "Shortcut", "MeanFlow"]


@st.cache_data(show_spinner="Flying every method from the same noise…", max_entries=32)
def flights(keys: tuple, k: int, n: int, seed: int) -> dict:
    return th.from_presets(keys, k, n, seed)


@st.cache_data(show_spinner=False, max_entries=16)
def player(keys: tuple, k: int, n: int, seed: int, overlay: bool, big: bool) -> str:
    """The player's HTML; the presenter view's is larger."""
    f = flights(keys, k, n, seed)
    return theatre_html(f, th.frame_times(f), overlay=overlay, data=th.preset_data()[0],
                        panel=int((520 if overlay else 290) * (HEIGHT_SCALE if big else 1)),
                        font=int(14 * (FONT_SCALE if big else 1)))


def endpoint_errors(f: dict) -> dict[str, float]:
    """Mean distance from each method's endpoints to the exact field's, same noise."""
    ref = f["exact"].xs[-1]
    return {key: float((fl.xs[-1] - ref).norm(dim=1).mean()) for key, fl in f.items()
            if key != "exact"}


def controls() -> tuple[tuple, int, int, bool]:
    c1, c2, c3, c4 = st.columns([3, 1.3, 1, 1.4])
    chosen = c1.multiselect("Methods", list(LABELS), [th.METHODS[k] for k in th.DEFAULT],
                            key="th_methods")
    k = c2.select_slider("Budget: network calls (NFE)", NFES, 1, key="th_k",
                         help="Euler flows and Shortcut take k steps; the distilled student "
                              "and MeanFlow always make one jump.")
    n = c3.select_slider("Noise points", SIZES, 400, key="th_n")
    layout = c4.segmented_control("Layout", ["Panels", "Overlaid"], default="Panels",
                                  key="th_layout", help="One panel per method, or all in one")
    keys = tuple(LABELS[m] for m in chosen)
    return keys, k, n, layout == "Overlaid"


st.title("Flow theatre: every method from the same noise")
st.caption("Article §6.3.1 · the preset models of the other pages (two moons, h = 0.05), each "
           "with its own sampler, carrying the same noise to the data")
cfg = settings()  # the presets' own data: an upload in the sidebar does not apply
if missing := th.missing_presets():
    st.info(f"The theatre plays the classroom presets, and this server has none of "
            f"{', '.join(missing)} (presets off with FLOWVIZ_PRESETS=0, or not yet made: "
            "`python -m flowviz presets`). Every other page still trains its runs live.")
    st.stop()
choice = ask("theatre", "Every method gets **one** network call (NFE 1) from the same noise. "
                        "Whose points end **farthest** from where the exact field v* carries "
                        "that noise?", QUESTION, "§2, §3, §5, §6")
if choice is None:
    # computed (and stored) before the prediction, drawn only after it: the reveal is instant,
    # and `python -m views.warm`, which renders pages at their defaults, ships it in assets/evals
    flights(th.DEFAULT, 1, 400, cfg.seed)
    cast(th.DEFAULT)
    waiting("Commit to a prediction above: the theatre plays here.")
    st.stop()

keys, k, n, overlay = controls()
if not keys:
    st.info("Pick at least one method to watch.")
    st.stop()
shown = flights(keys, k, n, cfg.seed)
st.iframe(player(keys, k, n, cfg.seed, overlay, presenting()))  # as tall as its content
st.caption("Press **▶ Play** or drag the time slider: it all runs in your browser. A point is "
           "**solid** at a state its sampler computed and **faint** between two of them, where "
           "it is drawn moving straight along the step: for an Euler or shortcut step that is "
           "what a shorter step would do, for a one-jump model it is only a drawing (the model "
           "computes the two ends). Click a point: the same noise point is ringed in every "
           "panel.")

one = endpoint_errors(flights(("exact", "rf1", "rf2", "shortcut", "meanflow"), 1, n, cfg.seed))
named = {th.METHODS[key]: v for key, v in one.items() if th.METHODS[key] in QUESTION}
far = max(named, key=named.get)
verdict("theatre", far, "Mean distance from each method's one-step endpoints to the exact "
        "field's endpoints for the same noise: " + ", ".join(
            f"{m} {v:.3f}" for m, v in named.items()) + ". One Euler step of the 1-RF follows "
        "the field at t = 0, which points every noise point towards the data mean (§2); the "
        "2-RF's straightened flow (§3), Shortcut's step of size d = 1 (§5) and MeanFlow's "
        "average velocity over [0, 1] (§6) were trained to make that jump.")

follow_particle(keys, shown, k, n, cfg.seed)
exports(keys, shown, k, n, cfg.seed)
