"""The teaching layer every page shares: predict before reveal, what to notice, and the "go
deeper" sections that stay out of the lesson until asked for.

A page asks its question first (``ask``); the figure or number that answers it is drawn only
after the student commits to a choice, and ``verdict`` then says whether the prediction held.
"""

from __future__ import annotations

import streamlit as st


def ask(key: str, question: str, options: list[str], section: str = "") -> str | None:
    """The question and a form to commit a prediction. Returns the committed choice, None before:
    the page draws what answers the question only once this is not None."""
    done = f"predict:{key}"
    with st.container(border=True, key=f"predict-{key}"):
        st.markdown(f"**Predict, then reveal**{f' · article {section}' if section else ''}  \n"
                    f"{question}")
        if st.session_state.get(done) is None:
            with st.form(f"form-{key}", border=False):
                choice = st.radio("Your prediction", options, index=None, key=f"choice:{key}",
                                  horizontal=len(options) <= 3)
                if st.form_submit_button("Reveal the answer", type="primary"):
                    if choice is None:
                        st.warning("Pick an answer first: commit to a prediction, then look.")
                    else:
                        st.session_state[done] = choice
                        st.rerun()  # draw the answer below the question
        else:
            st.markdown(f"Your prediction: **{st.session_state[done]}**")
    return st.session_state.get(done)


def verdict(key: str, answer: str, explanation: str) -> None:
    """Under the revealed figure: whether the committed prediction was ``answer`` (measured by
    the page), the explanation, and a way to ask again."""
    committed = st.session_state.get(f"predict:{key}")
    if committed is None:
        return
    with st.container(key=f"answer-{key}"):
        if committed == answer:
            st.success(f"Right: **{answer}**. {explanation}", icon=":material/check_circle:")
        else:
            st.error(f"You predicted *{committed}*; the page measured **{answer}**. "
                     f"{explanation}", icon=":material/cancel:")
        if st.button("Ask me again", key=f"again:{key}", type="tertiary"):
            st.session_state.pop(f"predict:{key}", None)
            st.rerun()


def waiting(text: str = "Commit to a prediction above: the answer is drawn here.") -> None:
    """Where the answer will appear, before the prediction."""
    st.caption(text)


def notice(text: str, section: str) -> None:
    """Two or three sentences on what to look at, with the article section they illustrate."""
    st.info(f"**What to notice** · article {section}\n\n{text}", icon=":material/visibility:")


def deeper(key: str, options: list[str]) -> str | None:
    """"Go deeper": research material apart from the lesson. Nothing of it is computed until a
    section is chosen; returns the chosen one (None: only the lesson)."""
    st.divider()
    return st.segmented_control("Go deeper", options, key=key,
                                help="Material beyond the lesson, computed only when opened.")

