""""Reproduce this": a page's settings as JSON, the link that reopens it, the command line."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import streamlit as st

from flowviz.reproduce import PAGES, FigureSpec
from views.present import presenting
from views.state import settings


def reproduce_box(page: str, prefix: str, runs: dict[str, str] | None = None,
                  fm: bool = False) -> None:
    """"Reproduce this": the page's settings (sidebar + its ``prefix``-keyed widgets) as JSON,
    the link that reopens the view, the command line that draws the same figures, and the
    configs of its training runs (``runs``: label -> JSON); ``fm``: the first is an FMRun,
    which ``python -m flowviz train --config`` trains."""
    if presenting():
        return
    cfg = settings()
    widgets = {k: v for k, v in sorted(st.session_state.to_dict().items())
               if k.startswith(prefix) and isinstance(v, (bool, int, float, str, tuple, list))}
    conf = {"page": page, "source": cfg.source, "target": cfg.target, "seed": cfg.seed,
            "n_data": cfg.n_data, "h": cfg.h, "device": cfg.device} | widgets
    with st.expander("Reproduce this: settings, link, command line", icon=":material/replay:"):
        st.code(json.dumps(conf, indent=2, default=str), language="json")
        query = urlencode(st.query_params.to_dict())
        st.markdown(f"**Link to this view**: the page's address with `?{query}`" if query else
                    "**Link**: every setting is at its default; changed settings appear in the "
                    "address bar, so copying it shares the view.")
        if page in PAGES and cfg.source == "gaussian" and cfg.upload == "":
            spec = FigureSpec(page, cfg.target, cfg.seed, cfg.n_data, cfg.h,
                              float(widgets.get(f"{prefix}t", FigureSpec.t)))
            st.markdown("**The same figures, headless** (PNG, SVG and CSV into `figures/`):")
            st.code(spec.command(), language="bash")
        for i, (label, text) in enumerate((runs or {}).items()):
            st.markdown(f"**{label}**" + (": save it as `run.json`, then `python -m flowviz "
                                          "train --config run.json --out run.pt`"
                                          if fm and i == 0 else ""))
            st.code(text, language="json")
