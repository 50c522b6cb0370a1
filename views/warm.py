"""`python -m views.warm`: refresh the evaluations shipped in assets/evals (flowviz.store).

Runs every page of app.py once at its defaults, on its presets, through Streamlit's AppTest,
then with its prediction committed and each "Go deeper" section opened (what they draw is
stored too), with the store
writing to a fresh folder; that folder then replaces assets/evals. Run it after
retraining presets or changing code that computes what a preset page shows (a changed source
file changes every key it touches, so stale entries are never read: pages just compute again).
`--check` only reports how many of a fresh run's entries the shipped store already holds.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def page_files(app: Path = ROOT / "app.py") -> list[str]:
    """The page files of app.py's st.Page entries, in order."""
    return re.findall(r"""st\.Page\(\s*["'](views/[^"']+\.py)["']""", app.read_text())


def render_all(pages: list[str], out: Path) -> dict[str, float]:
    """Run each page once (presets on, a fresh session each) with the store writing to out."""
    os.environ["FLOWVIZ_PRESETS"] = "1"
    os.environ["FLOWVIZ_CACHE"] = os.environ["FLOWVIZ_EVALS"] = str(out)  # all afresh
    from streamlit.testing.v1 import AppTest
    seconds = {}
    for page in pages:
        t0 = time.perf_counter()
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=900)
        at.switch_page(page)  # through the router, as a visitor opens it
        at.run()
        for question in [r for r in at.radio if r.label == "Your prediction"][:1]:
            question.set_value(question.options[0])  # any answer reveals the same figures
            next(b for b in at.button if b.label == "Reveal the answer").click()
            at.run()
        for deeper in [c for c in at.button_group if c.proto.label == "Go deeper"][:1]:
            for section in deeper.options:  # each section once, as a visitor opens it
                at.button_group(key=deeper.key).set_value(section).run()
        if at.exception:
            raise SystemExit(f"{page}: {at.exception[0].value}")
        seconds[page] = time.perf_counter() - t0
        print(f"{page}: {seconds[page]:.1f} s", flush=True)
    return seconds


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pages", nargs="*", help="page files (default: every page of app.py)")
    ap.add_argument("--check", action="store_true",
                    help="report which fresh entries the shipped store lacks; change nothing")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from flowviz import store

    shipped = store.shipped()
    with tempfile.TemporaryDirectory() as tmp:
        render_all(args.pages or page_files(), Path(tmp))
        fresh = {p.relative_to(tmp) for p in Path(tmp).rglob("*.pt")}
        old = {p.relative_to(shipped) for p in shipped.rglob("*.pt")} if shipped.exists() else set()
        print(f"{len(fresh)} entries; the shipped store holds {len(fresh & old)} of them "
              f"and {len(old - fresh)} unused")
        if args.check:
            raise SystemExit(0 if fresh <= old else 1)
        if not args.pages:
            shutil.rmtree(shipped, ignore_errors=True)  # all pages: stale entries go
        for rel in fresh:
            (shipped / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(tmp) / rel, shipped / rel)
    size = sum(p.stat().st_size for p in shipped.rglob("*.pt"))
    print(f"assets/evals: {len(list(shipped.rglob('*.pt')))} files, {size / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
