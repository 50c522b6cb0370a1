"""`python -m views.launch [options of streamlit run]`: `streamlit run app.py`, with the app's
imports done before the server opens (what `make run` starts).

Streamlit imports a page's modules when the first visitor arrives: torch, plotly, pandas and
flowviz take ~5 s on a 2-core laptop, on top of the page itself. Here they are imported first,
so the first visitor of a fresh server waits only for the page (benchmarks/bench_render.py).
"""

import importlib
import logging
import os
import pkgutil
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as app.py: before torch is imported


def preload() -> None:
    """Import every flowviz module and the shared page code, build the plotly template and
    digest the pages' code (flowviz.store)."""
    import pandas  # noqa: F401  (streamlit imports it at the first st.dataframe)
    from streamlit.runtime.caching import cache_data_api

    import flowviz
    from flowviz.viz.style import template

    # st.cache_data checks its options when a function is decorated, and warns that no server
    # runs yet: true here, and harmless (the caches are made at the first call)
    log = logging.getLogger(cache_data_api.__name__)
    level, log.level = log.level, logging.ERROR
    import views.sidebar  # noqa: F401
    from views.training import prepare_server

    prepare_server()  # builds the first optimizer (torch._dynamo, ~1.5 s), imports pandas
    log.setLevel(level)

    for m in pkgutil.walk_packages(flowviz.__path__, "flowviz."):
        if m.name != "flowviz.__main__":
            importlib.import_module(m.name)
    template()
    from flowviz import store
    from views.warm import ROOT, page_files

    for page in page_files():  # the code digests that key each page's stored evaluations
        store.source_digest(str(ROOT / page))


def main(argv: list[str] | None = None) -> None:
    preload()
    from streamlit.web import cli

    cli.main(["run", "app.py", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
