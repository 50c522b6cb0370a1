"""Shareable state for widgets whose labels are not URL-friendly (e.g. "Gaussian N(0, I)").

Most widgets bind themselves (``bind="query-params"``, Streamlit's own sync, which writes the
*label*). For a selectbox with a ``format_func``, ``?key=<option>`` carries the option itself:
``seed`` reads it before the widget is drawn, ``keep`` writes it back after a change.
``number_bind`` keeps a link's value that Streamlit's binding of a number_input cannot take
(inf) away from it.
"""

from __future__ import annotations

import math

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


def number_bind(key: str) -> str | None:
    """``bind=`` for a number_input bound to ``?key=``: "query-params", unless this session's
    link holds a non-finite number (Streamlit's binding takes ?seed=inf to int(inf) and the page
    fails before it can be caught; other bad values it ignores). Then the value is dropped and
    the widget stays unbound for this session, showing its default."""
    flag = f"_url_nonfinite:{key}"
    if flag not in st.session_state:
        try:
            bad = not math.isfinite(float(st.query_params.get(key, "0")))
        except ValueError:
            bad = False
        st.session_state[flag] = bad
        if bad:
            st.query_params.pop(key, None)
    return None if st.session_state[flag] else "query-params"
