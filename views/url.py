"""Shareable state for widgets whose labels are not URL-friendly (e.g. "Gaussian N(0, I)").

Most widgets bind themselves (``bind="query-params"``, Streamlit's own sync, which writes the
*label*). For a selectbox with a ``format_func``, ``?key=<option>`` carries the option itself:
``seed`` reads it before the widget is drawn, ``keep`` writes it back after a change.
"""

from __future__ import annotations

import streamlit as st


def seed(key: str, options) -> None:
    """Before the widget: an option named in ``?key=`` becomes its value (unknown ones are
    ignored, so a mistyped link shows the defaults)."""
    v = st.query_params.get(key)
    if v is not None and v in options and st.session_state.get(f"_url:{key}") != v:
        st.session_state[key] = st.session_state[f"_url:{key}"] = v


def keep(key: str, default) -> None:
    """After the widget: the URL shows the value (and drops it at the default)."""
    v = st.session_state.get(key, default)
    if v == default:
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = v
    st.session_state[f"_url:{key}"] = v if v != default else None
