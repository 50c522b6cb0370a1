"""First render time of every page (foundation issue 2, §5): target under 2 s per page.

Each measurement is a fresh Python process: import what ``python -m views.launch`` (`make run`)
imports before its server opens (timed separately: views.launch.preload), then
``AppTest.from_file("app.py")``, ``switch_page("views/<page>.py")`` and time ``.run()``: the
presets, no training, cold Streamlit caches, an empty user cache, so evaluations come from the
shipped store (assets/evals, flowviz.store) or are computed: the row says how many of each.
``FLOWVIZ_STORE=0`` measures with no store at all. Pages are app.py's st.Page entries. Median
over ``--reps`` processes per page.

    .venv/bin/python benchmarks/bench_render.py              # every page, 3 processes each
    .venv/bin/python benchmarks/bench_render.py --profile views/diffusion_vs_fm.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, ROOT)
from views.warm import page_files  # noqa: E402

APP = os.path.join(ROOT, "app.py")
TARGET_S = 2.0


def render_once(page: str, threads: int | None = None, profile: bool = False) -> dict:
    """In this (fresh) process: import time, then the time of the page's first run()."""
    t0 = time.perf_counter()
    import torch

    if threads:
        torch.set_num_threads(threads)
    from streamlit.testing.v1 import AppTest

    from flowviz import store
    from views.launch import preload

    preload()
    t_import = time.perf_counter() - t0

    at = AppTest.from_file(APP, default_timeout=600)
    note = ""
    try:
        at.switch_page(page)  # before the first run: the page renders first, caches cold
    except ValueError:  # a url_path that differs from the file name: run the default first
        at.run()
        at.switch_page(page)
        note = "after a first run of the default page"
    profs = []
    if profile:  # AppTest runs the script in its own thread: profile every thread started now
        import cProfile
        import threading

        thread_run = threading.Thread.run

        def profiled_run(self):
            profs.append(cProfile.Profile())
            profs[-1].enable()
            try:
                thread_run(self)
            finally:
                profs[-1].disable()

        threading.Thread.run = profiled_run
    t1 = time.perf_counter()
    at.run()
    t_run = time.perf_counter() - t1
    out = {"page": page, "import_s": t_import, "render_s": t_run, "note": note,
           "exception": [str(e.value)[:300] for e in at.exception],
           "threads": torch.get_num_threads(), **store.stats}
    if profs:
        import io
        import pstats

        s = io.StringIO()
        pstats.Stats(*profs, stream=s).sort_stats("cumulative").print_stats(60)
        out["profile"] = s.getvalue()
    return out


def fresh(page: str, threads: int | None, profile: bool = False) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", page]
    if threads:
        cmd += ["--threads", str(threads)]
    if profile:
        cmd.append("--child-profile")
    with tempfile.TemporaryDirectory() as cache:  # no user cache: the shipped store or compute
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                           env=os.environ | {"FLOWVIZ_CACHE": cache})
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode or not lines:
        raise RuntimeError(f"{page}: child failed\n{p.stderr[-2000:]}")
    return json.loads(lines[-1])


def load() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load: n/a"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pages", nargs="*", help="page files (default: every st.Page of app.py)")
    ap.add_argument("--reps", type=int, default=3, help="fresh processes per page")
    ap.add_argument("--quick", action="store_true", help="one process per page")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads in the page process (default: torch's default, as in "
                         "`streamlit run`)")
    ap.add_argument("--profile", metavar="PAGE", help="cProfile one first render of PAGE")
    ap.add_argument("--child", metavar="PAGE", help=argparse.SUPPRESS)
    ap.add_argument("--child-profile", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        print(json.dumps(render_once(args.child, args.threads or None, args.child_profile)))
        return
    if args.profile:
        r = fresh(args.profile, args.threads or None, profile=True)
        print(f"{r['page']}: import {r['import_s']:.2f} s, first render {r['render_s']:.2f} s "
              f"(under cProfile)\n{r['profile']}")
        return

    pages = args.pages or page_files()
    reps = 1 if args.quick else args.reps
    print(f"# bench_render · Python {sys.version.split()[0]} · {os.cpu_count()} cores · torch "
          f"threads {args.threads or 'default'} · OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', 'unset (active)')}")
    print(f"# load before: {load()}")
    rows = []
    for page in pages:
        rs = [fresh(page, args.threads or None) for _ in range(reps)]
        for r in rs:
            print(f"{page}: import {r['import_s']:.2f} s, first render {r['render_s']:.2f} s, "
                  f"{r['threads']} threads, {r['read']} stored evaluations read, "
                  f"{r['computed']} computed{', ' + r['note'] if r['note'] else ''}"
                  f"{', EXCEPTION ' + repr(r['exception']) if r['exception'] else ''}",
                  flush=True)
        rows.append((page, statistics.median(r["import_s"] for r in rs),
                     statistics.median(r["render_s"] for r in rs),
                     any(r["exception"] for r in rs), rs[-1]["read"], rs[-1]["computed"]))
    print(f"\n| page | median import (s) | median first render (s) | < {TARGET_S:.0f} s | "
          "evaluations read / computed |")
    print("|---|---|---|---|---|")
    for page, imp, ren, exc, read, computed in rows:
        ok = "exception" if exc else ("yes" if ren < TARGET_S else "NO")
        print(f"| {page} | {imp:.2f} | {ren:.2f} | {ok} | {read} / {computed} |")
    print(f"\n(median of {reps} fresh processes per page; render = AppTest.run() after "
          "switch_page; import = views.launch.preload, done before `make run`'s server opens)")
    print(f"# load after: {load()}")


if __name__ == "__main__":
    main()
