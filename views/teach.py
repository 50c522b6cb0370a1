"""The teaching layer every page shares: "what to notice" and predict-then-reveal questions.

A question's answer and explanation are computed by the page (from what it measured) and shown
only after the student commits to a choice with the form's button.
"""

from __future__ import annotations

import streamlit as st


def notice(text: str, section: str) -> None:
    """Two or three sentences on what to look at, with the article section they illustrate."""
    st.info(f"**What to notice** · article {section}\n\n{text}", icon=":material/visibility:")


def predict(key: str, question: str, options: list[str], answer: str, explanation: str,
            section: str = "") -> str | None:
    """Ask, let the student commit to one of ``options``, then reveal ``answer`` (one of the
    options) and ``explanation``. Returns the committed choice (None before)."""
    if answer not in options:
        raise ValueError(f"answer {answer!r} is not one of the options")
    done = f"predict:{key}"
    with st.container(border=True, key=f"predict-{key}"):
        st.markdown(f"**Predict, then reveal**{f' · article {section}' if section else ''}  \n"
                    f"{question}")
        with st.form(f"form-{key}", border=False):
            choice = st.radio("Your prediction", options, index=None, key=f"choice:{key}")
            if st.form_submit_button("Reveal the answer"):
                if choice is None:
                    st.warning("Pick an answer first: commit to a prediction, then look.")
                else:
                    st.session_state[done] = choice
        committed = st.session_state.get(done)
        if committed is None:
            return None
        if committed == answer:
            st.success(f"Right: **{answer}**", icon=":material/check_circle:")
        else:
            st.error(f"You predicted *{committed}*; the page measured **{answer}**.",
                     icon=":material/cancel:")
        st.markdown(explanation)
        if st.button("Ask me again", key=f"again:{key}", type="tertiary"):
            st.session_state.pop(done, None)
            st.rerun()
    return committed
