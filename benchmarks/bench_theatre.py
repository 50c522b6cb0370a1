"""Flow theatre playback in headless Chromium: frames drawn per second while playing.

    .venv/bin/python benchmarks/bench_theatre.py [--methods 6] [--n 400] [--k 4]

The page's player (flowviz.viz.theatre.theatre_html, the presets' flights) is written to a
standalone HTML file and opened in /usr/bin/chromium at 1400x900; Play is pressed and the
frames it draws are counted until t = 1 (it draws one per browser repaint, up to 60/s).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Press Play and count the frames the player draws until t = 1 (window.theatre.drawn) and the
# browser's repaints (requestAnimationFrame) over the same time.
PLAY = """async () => {
  const th = window.theatre, before = th.drawn;
  let paints = 0;
  document.getElementById('play').click();
  const t0 = performance.now();
  while (th.t() < 1 && performance.now() - t0 < 60000) {
    await new Promise(r => requestAnimationFrame(r)); paints++;
  }
  const s = (performance.now() - t0) / 1000;
  return {frames: th.drawn - before, seconds: s, fps: (th.drawn - before) / s,
          paints_per_s: paints / s};
}"""


def write_player(keys, k: int, n: int, out: Path) -> Path:
    from flowviz import theatre as th
    from flowviz.viz.theatre import theatre_html

    flights = th.from_presets(keys, k, n)
    html = theatre_html(flights, th.frame_times(flights), data=th.preset_data()[0])
    path = out / "theatre.html"
    path.write_text(html)
    return path


def measure(path: Path, reps: int = 3) -> dict:
    """The best of ``reps`` playbacks (the first warms the page up)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                     args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page(viewport={"width": 1400, "height": 900})
        tab.goto(path.as_uri())
        tab.wait_for_function("window.theatre !== undefined")
        runs = [tab.evaluate(PLAY) for _ in range(reps)]
        browser.close()
    return max(runs, key=lambda r: r["fps"])


def main(argv=None) -> None:
    from flowviz import theatre as th

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", type=int, default=6)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--k", type=int, default=4)
    a = ap.parse_args(argv)
    keys = th.DEFAULT[:a.methods]
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"{len(keys)} methods x {a.n} points, NFE {a.k}; {os.cpu_count()} cores; {load}")
    with tempfile.TemporaryDirectory() as tmp:
        r = measure(write_player(keys, a.k, a.n, Path(tmp)))
    print(f"player: {r['frames']} frames in {r['seconds']:.2f} s = {r['fps']:.1f} frames/s "
          f"({r['paints_per_s']:.0f} repaints/s)")


if __name__ == "__main__":
    main()
