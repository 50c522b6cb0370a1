"""Presenter view: larger type and figures, fewer controls, for a projector.

On with the sidebar toggle or ``?present=1`` (or ``?present=true``) in the URL. Pages ask
``presenting()`` to leave out advanced expanders; ``chart()`` enlarges figures and drops the
download menus.
"""

from __future__ import annotations

import streamlit as st

FONT_SCALE, TITLE_SCALE, HEIGHT_SCALE = 1.35, 1.2, 1.25

M = '[data-testid="stMain"]'  # the page, not the sidebar (its labels must still fit)
CSS = f"""<style>
[data-testid="stMainBlockContainer"] {{ max-width: 100%; padding: 2rem 2.5rem; }}
{M} [data-testid="stMarkdownContainer"] p, {M} [data-testid="stMarkdownContainer"] li,
{M} [data-testid="stWidgetLabel"] p, {M} label p {{ font-size: 1.35rem !important; }}
{M} [data-testid="stCaptionContainer"], {M} [data-testid="stCaptionContainer"] p
    {{ font-size: 1.1rem !important; }}
{M} [data-testid="stMetricValue"] [data-testid="stMarkdownContainer"] p,
{M} [data-testid="stMetricValue"] {{ font-size: 2.6rem !important; }}
{M} [data-testid="stPageLink"] p {{ font-size: 1.1rem !important; }}
{M} h1 {{ font-size: 3rem !important; }} {M} h2 {{ font-size: 2.2rem !important; }}
{M} .katex-display {{ font-size: 1.35em !important; }}
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
