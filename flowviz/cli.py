"""``python -m flowviz``: the app's experiments headless, for scripts and slides.

    python -m flowviz train --target moons --steps 2000 --out runs/fm_moons.pt
    python -m flowviz train --resume runs/fm_moons.pt --steps 4000
    python -m flowviz eval runs/fm_moons.pt --solver euler
    python -m flowviz exact --target moons --solver rk4
    python -m flowviz presets                 # retrain the classroom presets (assets/presets)
    python -m flowviz instaflow --config run.json --out runs/if.pt   # InstaFlow pipeline
    python -m flowviz figure straight_pairs --target moons --out figs   # a page's figures
    python -m flowviz theatre --k 4 --out theatre   # the Flow theatre page's animation
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import torch

from . import analysis, checkpoint, data, reproduce
from .args import SEED, Parser, bounded, writable_dir, writable_file
from .config import read_json
from .device import pick_device
from .exact import ExactField
from .experiment import FMRun, build_fm
from .images import cli as image_cli
from .methods.instaflow import (
    CONDITIONS,
    InstaFlowPipeline,
    InstaFlowRun,
    per_condition_quality,
)
from .models import MLPConfig
from .solvers import FIXED
from .theatre import DEFAULT as _THEATRE_DEFAULT
from .theatre import METHODS as _THEATRE_METHODS
from .train import OptimConfig, train_steps


def _run_from_args(a) -> FMRun:
    if a.config:
        return read_json(a.config, FMRun)
    return FMRun(source=a.source, target=a.target, coupling=a.coupling, n_data=a.n_data,
                 data_seed=a.seed, batch=a.batch, model=MLPConfig(hidden=a.hidden, depth=a.depth),
                 optim=OptimConfig(steps=a.steps, lr=a.lr, seed=a.seed)).validated()


def cmd_train(a) -> int:
    if a.out:
        writable_file(a.out)
    dev = pick_device(a.device)
    if a.resume:
        run, state = checkpoint.load_fm(a.resume, dev)
        if a.steps and a.steps != run.optim.steps:  # extend the schedule
            run = dataclasses.replace(run, optim=dataclasses.replace(run.optim, steps=a.steps))
            state.cfg = run.optim
        out = a.out or writable_file(a.resume)
    else:
        run = _run_from_args(a)
        state = build_fm(run, dev)
        out = a.out
    print(run.to_json() if a.verbose else f"training {run.target} ({run.coupling}) on {dev}")
    t0 = time.perf_counter()
    while not state.done:
        train_steps(state, a.chunk)
        last = state.history[-1] if state.history else {}
        print(f"step {state.step:6d}  loss {last.get('loss', float('nan')):.4f}  "
              f"{time.perf_counter() - t0:6.1f}s", flush=True)
    if state.status == "nan":
        print(state.message, file=sys.stderr)
    if out:
        print(f"saved {checkpoint.save(out, state, run)}")
    return 1 if state.status == "nan" else 0


def _print_table(rows: dict[str, tuple[list[int], list[float]]]) -> None:
    print(f"{'':24s}" + "".join(f"{'NFE ' + str(n):>11s}" for n in analysis.NFES))
    for name, (n, q) in rows.items():
        d = dict(zip(n, q, strict=True))
        print(f"{name:24s}" + "".join(f"{d[k]:11.4f}" if k in d else f"{'':11s}"
                                      for k in analysis.NFES))


def cmd_eval(a) -> int:
    run, state = checkpoint.load_fm(a.checkpoint)
    model = state.sampler_model.eval()
    x0 = data.sample(run.source, a.n, a.seed + 1)[0]
    ref = data.sample(run.target, a.n, a.seed + 2)[0]
    print(f"energy distance to {a.n} fresh {run.target} samples, {a.n} samples, "
          f"after {state.step} steps")
    _print_table({f"{s}": analysis.quality_vs_nfe(model, x0, ref, s) for s in a.solver})
    pm = analysis.path_metrics(model, x0[:500])
    print({k: round(v, 4) for k, v in pm.items() if isinstance(v, float)})
    return 0


def cmd_exact(a) -> int:
    pts = data.sample(a.target, a.n_data, a.seed)[0]
    field = ExactField(pts, h=a.h)
    x0 = torch.randn(a.n, 2, generator=torch.Generator().manual_seed(a.seed + 1))
    ref = field.sample_target(a.n, torch.Generator().manual_seed(a.seed + 2))
    print(f"exact field on {a.n_data} {a.target} points (h = {a.h})")
    _print_table({s: analysis.quality_vs_nfe(field, x0, ref, s) for s in a.solver})
    return 0


def cmd_presets(a) -> int:
    """Retrain presets from their recorded configs (assets/presets/*.json) and check them."""
    from . import presets
    torch.set_num_threads(a.threads)
    chosen = presets.specs()
    if unknown := set(a.names + a.pair) - set(chosen):
        print(f"error: no preset {', '.join(sorted(unknown))}; have {', '.join(chosen)}",
              file=sys.stderr)
        return 2
    if a.pair:  # write the same-time partners' configs, then train them below
        a.names = [presets.make_partner(n).name for n in a.pair]
        chosen = presets.specs()
    for name, p in chosen.items():
        if a.names and name not in a.names:
            continue
        done = presets.load(p) if a.check else presets.train(p)
        for q in presets.quality(p, done):
            print(f"{name}/{q['phase']}: {q['steps']:3d}-step ED {q['ed']:.4f} (claim "
                  f"{q['claim']}): {'ok' if q['ok'] else 'NOT MET'}")
        if not a.check:
            print(f"saved {p.path} ({p.path.stat().st_size / 1024:.0f} KiB)")
    return 0


def cmd_instaflow(a) -> int:
    """The InstaFlow page's pipeline headless (article §4): each phase's time, the one-step
    quality per condition, and (--out) a checkpoint the page's preset format reads."""
    if a.out:
        writable_file(a.out)
    if a.config:
        run = read_json(a.config, InstaFlowRun)
    else:
        run = InstaFlowRun(target=a.target, teacher=a.teacher, seed=a.seed)
    pipe = InstaFlowPipeline(run, pick_device(a.device)).run_all()
    if pipe.status == "nan":
        print(f"error: {pipe.message}", file=sys.stderr)
        return 1
    for p, s in pipe.phase_seconds.items():
        print(f"{p:>22}: {s:6.1f} s")
    who = {"teacher": run.teacher_steps, "2-RF": 1, "student from 2-RF": 1,
           "student from teacher": 1}
    q = {w: per_condition_quality(pipe, w, n, a.n, run.seed) for w, n in who.items()}
    print("energy distance to each condition's data (teacher at its steps, the rest 1 step)")
    print(f"{'condition':>12} " + " ".join(f"{w:>20}" for w in who))
    for c, name in enumerate(CONDITIONS[run.target]):
        print(f"{name:>12} " + " ".join(f"{q[w][c]:20.4f}" for w in who))
    print(f"{'mean':>12} " + " ".join(f"{sum(q[w]) / len(q[w]):20.4f}" for w in who))
    if a.out:
        checkpoint.save(a.out, dict(pipe.jobs), run, resumable=False)
        print(f"saved {a.out}")
    return 0


def cmd_theatre(a) -> int:
    """The Flow theatre page's animation headless, from the presets: the page's player as an
    HTML file (it plays offline), the GIF and the frames CSV in ``--out``."""
    from . import theatre
    from .viz.theatre import theatre_gif, theatre_html
    out = writable_dir(a.out)
    flights = theatre.from_presets(a.methods, a.k, a.n, a.seed)
    times, data = theatre.frame_times(flights), theatre.preset_data()[0]
    (out / "theatre.html").write_text(theatre_html(flights, times, a.overlay, data))
    (out / "theatre.gif").write_bytes(theatre_gif(flights, times, data))
    (out / "theatre_frames.csv").write_text(theatre.frames_csv(flights, times))
    for f in flights.values():
        print(f"{f.label:>18}: {f.how}")
    print(f"wrote theatre.html, theatre.gif, theatre_frames.csv ({len(times)} frames) to {out}")
    return 0


def main(argv=None) -> int:
    p = Parser(prog="python -m flowviz", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train a 1-rectified flow (or resume one)")
    t.add_argument("--config", help="an FMRun JSON (as shown on the page); overrides flags")
    t.add_argument("--resume", help="continue from this checkpoint")
    t.add_argument("--source", default="gaussian", choices=sorted(data.SAMPLERS))
    t.add_argument("--target", default="moons", choices=sorted(data.SAMPLERS))
    t.add_argument("--coupling", default="independent", choices=data.COUPLINGS)
    t.add_argument("--n-data", type=bounded(0, data.MAX_POINTS), default=0,
                   help="fixed data set size (0: fresh)")
    t.add_argument("--batch", type=bounded(1, 8192), default=FMRun.batch)
    t.add_argument("--hidden", type=bounded(1, 1024), default=MLPConfig.hidden)
    t.add_argument("--depth", type=bounded(1, 8), default=MLPConfig.depth)
    t.add_argument("--steps", type=bounded(1, 100_000), default=None)
    t.add_argument("--lr", type=bounded(1e-8, 1.0, float), default=OptimConfig.lr)
    t.add_argument("--seed", type=SEED, default=0)
    t.add_argument("--chunk", type=bounded(1, 100_000), default=500)
    t.add_argument("--device", default="auto")
    t.add_argument("--out", help="checkpoint path (.pt)")
    t.add_argument("-v", "--verbose", action="store_true")
    e = sub.add_parser("eval", help="quality vs NFE and path metrics of a checkpoint")
    e.add_argument("checkpoint")
    x = sub.add_parser("exact", help="quality vs NFE of the exact field v*")
    x.add_argument("--target", default="moons", choices=sorted(data.SAMPLERS))
    x.add_argument("--n-data", type=bounded(2, data.MAX_POINTS), default=1000)
    x.add_argument("--h", type=bounded(0.0, 1.0, float), default=0.05)
    for q in (e, x):
        q.add_argument("--solver", nargs="+", default=["euler"], choices=FIXED)
        q.add_argument("--n", type=bounded(2, 100_000), default=2000,
                       help="samples for the energy distance")
        q.add_argument("--seed", type=SEED, default=0)
    r = sub.add_parser("presets", help="retrain the classroom presets from assets/presets/*.json")
    r.add_argument("names", nargs="*", help="presets to retrain (default: all)")
    r.add_argument("--check", action="store_true", help="only load them and measure quality")
    r.add_argument("--pair", nargs="+", default=[], metavar="NAME",
                   help="time NAME's same-time partner run here, write its JSON and train it")
    r.add_argument("--threads", type=bounded(1, 256), default=2)
    i = sub.add_parser("instaflow", help="teacher -> 2-RF -> one-step students (InstaFlow)")
    i.add_argument("--config", help="an InstaFlowRun JSON (as shown on the page)")
    i.add_argument("--target", default="8gaussians", choices=sorted(CONDITIONS))
    i.add_argument("--teacher", default="exact_vp", choices=["exact_vp", "rf"])
    i.add_argument("--seed", type=SEED, default=0)
    i.add_argument("--n", type=bounded(2, 100_000), default=1000,
                   help="samples per condition for the ED")
    i.add_argument("--device", default="auto")
    i.add_argument("--out", help="checkpoint path (.pt)")
    th = sub.add_parser("theatre", help="the Flow theatre's animation from the presets")
    th.add_argument("--methods", nargs="+", default=list(_THEATRE_DEFAULT),
                    choices=list(_THEATRE_METHODS))
    th.add_argument("--k", type=bounded(1, 128), default=1, help="network calls per sample (NFE)")
    th.add_argument("--n", type=bounded(1, 10_000), default=400, help="noise points")
    th.add_argument("--seed", type=SEED, default=0)
    th.add_argument("--overlay", action="store_true", help="one panel instead of one per method")
    th.add_argument("--out", default="theatre")
    reproduce.add_parser(sub)
    image_cli.add_parser(sub)
    try:
        a = p.parse_args(argv)
    except SystemExit as stop:  # a bad argument (one line said) or --help: the exit code
        return stop.code
    if a.cmd == "train" and a.steps is None:
        a.steps = 0 if a.resume else OptimConfig.steps
    try:
        return {"train": cmd_train, "eval": cmd_eval, "exact": cmd_exact,
                "instaflow": cmd_instaflow,
                "presets": cmd_presets, "figure": reproduce.cmd_figure, "theatre": cmd_theatre,
                "image": image_cli.cmd_image}[a.cmd](a)
    except (ValueError, OSError) as err:  # CheckpointError, ConfigError, a path: one sentence
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2


def _one_line(err: Exception) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if not isinstance(err, OSError) or not err.filename else \
        f"{err.strerror or text}: {err.filename}"
