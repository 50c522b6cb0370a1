"""Presenter view: larger type and figures, fewer controls, for a projector.

On with the sidebar toggle or ``?present=1`` (or ``?present=true``) in the URL. Pages ask
``presenting()`` to leave out advanced expanders; ``chart()`` enlarges figures and drops the
download menus.
"""

from __future__ import annotations

import streamlit as st

FONT_SCALE, TITLE_SCALE, HEIGHT_SCALE = 1.35, 1.2, 1.25

CSS = """<style>
html { font-size: 20px; }
[data-testid="stMainBlockContainer"] { max-width: 100%; padding-left: 2rem; padding-right: 2rem; }
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li { font-size: 1.3rem; }
[data-testid="stCaptionContainer"] { font-size: 1.05rem; }
[data-testid="stMetricValue"] { font-size: 2.6rem; }
h1 { font-size: 2.8rem !important; } h2 { font-size: 2.1rem !important; }
</style>"""


def toggle() -> None:
    """The sidebar switch, bound to ``?present=``; ``?present=1`` also turns it on."""
    if "present" not in st.session_state and st.query_params.get("present") == "1":
        st.session_state["present"] = True
    st.sidebar.toggle("Presenter view", key="present", bind="query-params",
                      help="Larger text and figures, fewer controls: for a projector. "
                           "Share it with ?present=1 in the URL.")
    if presenting():
        st.markdown(CSS, unsafe_allow_html=True)


def presenting() -> bool:
    return bool(st.session_state.get("present"))


def enlarge(fig) -> None:
    """Bigger fonts and a taller figure, in place (plotly text does not follow page CSS)."""
    title = fig.layout.title.font.size or 17
    fig.update_layout(font_size=(fig.layout.font.size or 14) * FONT_SCALE,
                      height=int((fig.layout.height or 450) * HEIGHT_SCALE),
                      title_font_size=title * TITLE_SCALE)  # long titles must still fit
