"""Many users on one server (issue 8): a classroom's load on `streamlit run app.py`, loopback only.

Starts the real server (FLOWVIZ_MAX_TRAININGS=2, FLOWVIZ_TORCH_THREADS=1) and opens, all at
once, ``--viewers`` sessions on the 2-D pages at their defaults (they open on presets,
round-robin over the pages) and ``--trainers`` sessions that press a training button and keep
its fragment ticking until the run is done. Checks: every session gets its page (charts, no
exception element, the preset caption), trainings finish, no traceback in the server log, and
the cap holds (trainings beyond 2 report a queue position). Records time to first chart
(p50/p95), training wall times and the server's peak memory (RSS, sampled every 0.25 s from
/proc). Bounded: at most 40 sessions and ``--timeout`` seconds in all.

Two clients:
  ws (default)  Streamlit's own websocket protocol (protobuf BackMsg/ForwardMsg), no browser:
                what the server does for each session. Trainers press "Retrain live" on the
                straight-pairs preset (1000 steps) and answer auto_rerun as the frontend does.
  chromium      one headless Chromium (/usr/bin/chromium), a Playwright context per session;
                trainers press "Train live" on the straight-pairs page with ?sp_steps=300. On a
                2-core machine 24 Chromium pages swamp the CPU that the server needs (in a
                classroom each browser runs on its own laptop), so ws is the measure.

    .venv/bin/python benchmarks/load_test.py --viewers 20 --trainers 4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu, load  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["straight_pairs", "shortcut", "meanflow", "reflow"]
FIRST_PAGES = ["straight_pairs", "reflow", "instaflow", "shortcut", "meanflow", "scoreboard",
               "scaling"]
CHART = '[data-testid="stPlotlyChart"]'
EXC = '[data-testid="stException"]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log: Path, how: str = "launch") -> subprocess.Popen:
    """``how``: "launch" is `make run` (python -m views.launch: imports before the server
    opens), "streamlit" is plain `streamlit run app.py` (imports at the first visitor)."""
    env = os.environ | {"FLOWVIZ_MAX_TRAININGS": "2", "FLOWVIZ_TORCH_THREADS": "1",
                        "OMP_WAIT_POLICY": "PASSIVE"}
    cmd = ["-m", "views.launch"] if how == "launch" else ["-m", "streamlit", "run", "app.py"]
    proc = subprocess.Popen(
        [sys.executable, *cmd, "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.25)
    proc.kill()
    raise TimeoutError("the server did not start")


def rss_mb(pid: int) -> float:
    try:
        txt = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return int(re.search(r"VmRSS:\s+(\d+)", txt).group(1)) / 1024


async def sample_memory(pid: int, out: list, stop: asyncio.Event) -> None:
    while not stop.is_set():
        out.append(rss_mb(pid))
        await asyncio.sleep(0.25)


async def idle(page, timeout: float) -> None:
    """The script run is over (Streamlit's data-test-script-state), for 1 s in a row."""
    deadline, since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        state = await page.locator('[data-testid="stApp"]').first.get_attribute(
            "data-test-script-state")
        if state in ("notRunning", "compilationError"):
            since = since or time.monotonic()
            if time.monotonic() - since > 1.0:
                return
        else:
            since = None
        await asyncio.sleep(0.2)
    raise TimeoutError("page still running")


async def viewer(browser, url: str, page_name: str, timeout: float) -> dict:
    ctx = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await ctx.new_page()
    t0 = time.perf_counter()
    try:
        await page.goto(f"{url}/{page_name}", timeout=timeout * 1000)
        await page.wait_for_selector(CHART, timeout=timeout * 1000)
        first = time.perf_counter() - t0
        await idle(page, timeout)
        text = await page.inner_text("body")
        return {"kind": "preset", "page": page_name, "first_chart_s": first,
                "done_s": time.perf_counter() - t0, "charts": await page.locator(CHART).count(),
                "exceptions": await page.locator(EXC).count(), "preset": "Preset:" in text}
    except Exception as e:  # noqa: BLE001 - recorded as this session's failure
        return {"kind": "preset", "page": page_name, "error": f"{type(e).__name__}: {e}"[:200]}
    finally:
        await ctx.close()


async def trainer(browser, url: str, steps: int, timeout: float) -> dict:
    ctx = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await ctx.new_page()
    t0 = time.perf_counter()
    queued, places = False, set()
    try:
        await page.goto(f"{url}/straight_pairs?sp_steps={steps}", timeout=timeout * 1000)
        await page.wait_for_selector(CHART, timeout=timeout * 1000)
        first = time.perf_counter() - t0
        await idle(page, timeout)
        await page.get_by_role("button", name="Train live", exact=True).click()
        t1 = time.perf_counter()
        while True:
            text = await page.inner_text("body")
            if m := re.search(r"number (\d+) in the queue", text):
                queued = True
                places.add(int(m.group(1)))
            if f"step {steps} / {steps}" in text:
                break
            if time.perf_counter() - t1 > timeout:
                raise TimeoutError("training did not finish")
            await asyncio.sleep(0.5)
        train_s = time.perf_counter() - t1
        await idle(page, timeout)
        return {"kind": "train", "first_chart_s": first, "train_wall_s": train_s,
                "queued": queued, "places": sorted(places),
                "exceptions": await page.locator(EXC).count(),
                "charts": await page.locator(CHART).count()}
    except Exception as e:  # noqa: BLE001
        return {"kind": "train", "error": f"{type(e).__name__}: {e}"[:200]}
    finally:
        await ctx.close()


class WsSession:
    """One browser session without a browser: Streamlit's own websocket protocol (protobuf
    BackMsg/ForwardMsg on /_stcore/stream), as the frontend speaks it. It asks for a page, reads
    the elements the server sends (charts, exceptions, captions, buttons, progress), presses a
    button, and keeps a running fragment ticking (auto_rerun) as the browser would."""

    def __init__(self, url: str, page: str, query: str = ""):
        self.url, self.page, self.query = url, page, query
        self.buttons, self.texts, self.charts, self.exceptions = {}, [], 0, 0
        self.fragment = None

    async def __aenter__(self):
        import websockets

        host = self.url.split("//")[1]
        self.ws = await websockets.connect(f"ws://{host}/_stcore/stream", subprotocols=[
            "streamlit"], origin=self.url, max_size=2**27, open_timeout=120,
            ping_interval=None)  # a busy server answers late; the browser does not ping
        return self

    async def __aexit__(self, *exc):
        await self.ws.close()

    async def rerun(self, trigger: str | None = None, fragment: str | None = None):
        from streamlit.proto.BackMsg_pb2 import BackMsg

        m = BackMsg()
        cs = m.rerun_script
        cs.query_string, cs.page_name = self.query, self.page
        if trigger is not None:
            w = cs.widget_states.widgets.add()
            w.id, w.trigger_value = trigger, True
        if fragment is not None:
            cs.fragment_id, cs.is_auto_rerun = fragment, True
        await self.ws.send(m.SerializeToString())

    async def until_finished(self, on_chart=None, timeout: float = 600) -> None:
        """Read messages until a script run (or a fragment run) finishes."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        while True:
            msg = ForwardMsg.FromString(await asyncio.wait_for(self.ws.recv(), timeout))
            kind = msg.WhichOneof("type")
            if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                el = msg.delta.new_element
                t = el.WhichOneof("type")
                if t == "plotly_chart":
                    self.charts += 1
                    if on_chart is not None:
                        on_chart()
                elif t == "exception":
                    self.exceptions += 1
                    self.texts.append("EXCEPTION " + el.exception.message)
                elif t == "button":
                    self.buttons[el.button.label] = el.button.id
                elif t == "markdown":
                    self.texts.append(el.markdown.body)
                elif t == "alert":
                    self.texts.append(el.alert.body)
                elif t == "progress":
                    self.texts.append(el.progress.text)
            elif kind == "auto_rerun":
                self.fragment = (msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
            elif kind == "stop_auto_rerun":
                self.fragment = None
            elif kind == "script_finished" and msg.script_finished != \
                    ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                return


async def ws_viewer(url: str, page_name: str, timeout: float) -> dict:
    t0, first = time.perf_counter(), []
    try:
        async with WsSession(url, page_name) as s:
            await s.rerun()
            await s.until_finished(lambda: first or first.append(time.perf_counter() - t0),
                                   timeout)
            return {"kind": "preset", "page": page_name, "first_chart_s": first[0],
                    "done_s": time.perf_counter() - t0, "charts": s.charts,
                    "exceptions": s.exceptions,
                    "preset": any(x.startswith("**Preset**") for x in s.texts)}
    except Exception as e:  # noqa: BLE001 - recorded as this session's failure
        return {"kind": "preset", "page": page_name, "error": f"{type(e).__name__}: {e}"[:200]}


async def ws_trainer(url: str, page_name: str, timeout: float) -> dict:
    """Open the page on its preset, press Retrain live, tick the fragment until it is done."""
    t0, first, places = time.perf_counter(), [], set()
    try:
        async with WsSession(url, page_name) as s:
            await s.rerun()
            await s.until_finished(lambda: first or first.append(time.perf_counter() - t0),
                                   timeout)
            t1, n0 = time.perf_counter(), len(s.texts)  # the preset shows "step N / N" too
            await s.rerun(trigger=s.buttons["Retrain live"])
            await s.until_finished(timeout=timeout)
            finished = re.compile(r"step (\d+) / \1 ")
            while s.fragment is not None and not any(finished.match(x) for x in s.texts[n0:]):
                if time.perf_counter() - t1 > timeout:
                    raise TimeoutError("training did not finish")
                await asyncio.sleep(s.fragment[1])
                n = len(s.texts)
                await s.rerun(fragment=s.fragment[0])
                await s.until_finished(timeout=timeout)
                for x in s.texts[n:]:
                    if m := re.search(r"number (\d+) in the queue", x):
                        places.add(int(m.group(1)))
            return {"kind": "train", "page": page_name, "first_chart_s": first[0],
                    "train_wall_s": time.perf_counter() - t1,
                    "finished": any(finished.match(x) for x in s.texts[n0:]),
                    "queued": bool(places), "places": sorted(places),
                    "exceptions": s.exceptions, "charts": s.charts}
    except Exception as e:  # noqa: BLE001
        return {"kind": "train", "error": f"{type(e).__name__}: {e}"[:200]}


async def gather_bounded(jobs, timeout: float) -> list:
    """Every job's result; one still running at ``timeout`` is recorded as timed out."""
    tasks = [asyncio.ensure_future(j) for j in jobs]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for t in pending:
        t.cancel()
    return [t.result() if t in done else {"kind": "?", "error": "TimeoutError: bounded run"}
            for t in tasks]


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


async def first_visitors(a) -> int:
    """One fresh server per preset page and one visitor: the wait of a class's first student
    (no user cache: evaluations come from the shipped store, assets/evals, or are computed)."""
    print(f"machine: {cpu()}, {os.cpu_count()} cores; server: {a.server}; before: {load()}")
    rows, bad = [], 0
    for name in FIRST_PAGES:
        port, log = free_port(), Path(tempfile.gettempdir()) / "flowviz_first_visitor.log"
        with tempfile.TemporaryDirectory() as cache:
            os.environ["FLOWVIZ_CACHE"] = cache
            t0 = time.perf_counter()
            server = start_server(port, log, a.server)
            start = time.perf_counter() - t0
            try:
                r = await ws_viewer(f"http://127.0.0.1:{port}", name, a.timeout)
            finally:
                stop_server(server)
        bad += "error" in r or bool(r.get("exceptions")) or not r.get("preset", name in
                                                                        ("scoreboard", "scaling"))
        rows.append((name, start, r.get("first_chart_s", float("nan")),
                     r.get("done_s", float("nan")), r.get("charts", 0), r.get("error", "")))
        print(f"{name}: server up in {start:.1f} s, first chart {rows[-1][2]:.2f} s, page "
              f"done {rows[-1][3]:.2f} s, {rows[-1][4]} charts {rows[-1][5]}", flush=True)
    print(f"after: {load()}\n\n| page | server start (s) | first chart (s) | page done (s) | "
          "charts |\n|---|---|---|---|---|")
    for name, start, first, done, charts, _ in rows:
        print(f"| {name} | {start:.1f} | {first:.2f} | {done:.2f} | {charts} |")
    return 1 if bad else 0


async def main_async(a) -> int:
    if a.first_visitor:
        return await first_visitors(a)
    if a.client == "chromium":
        from playwright.async_api import async_playwright

    port, log = free_port(), Path(tempfile.gettempdir()) / "flowviz_load_test_server.log"
    print(f"machine: {cpu()}, {os.cpu_count()} cores; before: {load()}", flush=True)
    server = start_server(port, log, a.server)
    url = f"http://127.0.0.1:{port}"
    mem, stop = [], asyncio.Event()
    try:
        sampler = asyncio.create_task(sample_memory(server.pid, mem, stop))
        idle_mb = rss_mb(server.pid)
        if a.warm:  # the teacher opens each page once before class (shared caches fill)
            for name in PAGES:
                r = await ws_viewer(url, name, a.timeout)
                print(f"warm-up {name}: {r.get('done_s', r.get('error'))}", flush=True)
        t0 = time.perf_counter()
        if a.client == "ws":
            jobs = [ws_viewer(url, PAGES[i % len(PAGES)], a.timeout) for i in range(a.viewers)]
            jobs += [ws_trainer(url, "straight_pairs", a.timeout) for _ in range(a.trainers)]
            results = await gather_bounded(jobs, a.timeout)
        else:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(
                    executable_path="/usr/bin/chromium", headless=True,
                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
                jobs = [viewer(browser, url, PAGES[i % len(PAGES)], a.timeout)
                        for i in range(a.viewers)]
                jobs += [trainer(browser, url, a.steps, a.timeout) for _ in range(a.trainers)]
                results = await gather_bounded(jobs, a.timeout)
                await browser.close()
        wall = time.perf_counter() - t0
        await asyncio.sleep(5)  # the sessions are closed: what the server holds afterwards
        end_mb = rss_mb(server.pid)
        stop.set()
        await sampler
    finally:
        stop_server(server)
    after = load()
    errors = [r for r in results if "error" in r or r.get("exceptions")]
    viewers = [r for r in results if r["kind"] == "preset" and "error" not in r]
    errors += [r for r in results if r["kind"] == "train" and not r.get("finished", True)]
    trainers = [r for r in results if r["kind"] == "train" and "error" not in r]
    firsts = [r["first_chart_s"] for r in results if "first_chart_s" in r]
    tb = "Traceback" in log.read_text()
    print(f"after: {after}")
    for r in results:
        print(r)
    print(f"\n{a.viewers} preset sessions + {a.trainers} training sessions, all opened at once; "
          f"wall {wall:.0f} s")
    if not firsts:
        print("FAIL: no session drew a chart")
        return 1
    print(f"time to first chart (all {len(firsts)}): p50 {pct(firsts, 0.5):.1f} s, "
          f"p95 {pct(firsts, 0.95):.1f} s, max {max(firsts):.1f} s")
    if viewers:
        done = [r["done_s"] for r in viewers]
        print(f"preset page complete: p50 {statistics.median(done):.1f} s, "
              f"p95 {pct(done, 0.95):.1f} s; preset caption on {sum(r['preset'] for r in viewers)}"
              f" / {len(viewers)}")
    if trainers:
        print("training wall s (press -> done): " + ", ".join(
            f"{r['train_wall_s']:.0f}" + (f" (queued, places {r['places']})" if r['queued']
                                          else "") for r in trainers))
    print(f"server RSS: idle {idle_mb:.0f} MB, peak {max(mem):.0f} MB, 5 s after the sessions "
          f"closed {end_mb:.0f} MB")
    print(f"errors: {len(errors)}; traceback in the server log ({log}): {tb}")
    ok = (not errors and not tb and all(r["preset"] for r in viewers)
          and len(viewers) == a.viewers and len(trainers) == a.trainers)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--viewers", type=int, default=20)
    p.add_argument("--trainers", type=int, default=4)
    p.add_argument("--steps", type=int, default=300, help="training steps per trainer")
    p.add_argument("--timeout", type=float, default=600, help="seconds for the whole load")
    p.add_argument("--first-visitor", action="store_true",
                   help="instead: a fresh server per preset page, one visitor each")
    p.add_argument("--server", choices=["launch", "streamlit"], default="launch",
                   help="launch: `make run` (python -m views.launch); streamlit: streamlit run")
    p.add_argument("--warm", action="store_true",
                   help="open each page once, alone, before the sessions arrive")
    p.add_argument("--client", choices=["ws", "chromium"], default="ws",
                   help="ws: Streamlit's websocket protocol, no browser (the server's load "
                        "alone); chromium: one headless Chromium, a context per session")
    a = p.parse_args()
    if a.viewers + a.trainers > 40:
        p.error("at most 40 sessions: this is a bounded loopback test")
    return asyncio.run(main_async(a))


if __name__ == "__main__":
    sys.exit(main())
