"""``python -m flowviz image ...``: image runs headless (config JSON in; checkpoints and sample
grids out; resumable).

    python -m flowviz image config --method meanflow > mf.json
    python -m flowviz image train --config mf.json --out runs/mf.pt --grids runs/mf
    python -m flowviz image train --resume runs/mf.pt --steps 8000     # continue, longer
    python -m flowviz image sample runs/mf.pt --nfe 1 2 4 --out runs/mf
    python -m flowviz image train --config fm.json --conditional --label-drop 0.1 --out c.pt
    python -m flowviz image sample c.pt --nfe 32 --guidance 0 1 2 4 --out runs/c  # CFG grids
    torchrun --nproc_per_node=2 -m flowviz.images.ddp --config mf.json   # several GPUs
    python -m flowviz image latent --config lat.json --out runs/lat.pt --grids runs/lat
    python -m flowviz image eval runs/lat.pt --classifier clf.pt --json q.json  # any kind

A ReFlow or distillation config names its teacher checkpoint (``teacher``), looked up as given,
then next to the config or checkpoint that names it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from .. import checkpoint
from ..args import SEED, bounded, writable_dir, writable_file
from ..config import ConfigError, from_dict, read_json
from ..device import pick_device
from ..train import train_steps
from .data import ImageDataError
from .experiment import (
    COMPILE_MODES,
    METHODS,
    N_CLASSES,
    NFES,
    ImageRun,
    build_image,
    class_labels,
    compile_state,
    generate,
    image_data,
    nfes,
    noise,
)
from .grid import save_png


def teacher_path(run: ImageRun, base: str | Path | None) -> Path:
    """``run.teacher`` as given, else relative to ``base`` (the folder of the file naming it)."""
    p = Path(run.teacher)
    if p.is_file() or base is None:
        return p
    return Path(base) / p


def load(path, device="cpu") -> tuple[ImageRun, object]:
    """(run, state) of an image checkpoint (weights_only loading, flowviz.checkpoint); a ReFlow
    or distillation state loads its teacher from file only if training resumes."""
    run, state = checkpoint.load(path, device, kind="image")
    if run.method in ("reflow", "distill"):
        state.objective.teacher = lambda: load(teacher_path(run, Path(path).parent), device)[1] \
            .sampler_model
    return run, state


def write_grids(run: ImageRun, model, folder: str | Path, n: int = 64, seed: int = 0,
                nfe_list=NFES, guidance=None) -> list[Path]:
    """One PNG per NFE, all from the same noise: ``<folder>/nfe<k>.png``. A conditional run:
    one per NFE and guidance weight w (``guidance``; None: the run's), ``nfe<k>_w<w>.png``, one
    class per column (labels 0..K-1 repeated)."""
    dev = next(model.parameters()).device
    x0 = noise(run, n, seed, dev)
    if not run.conditional:
        return [save_png(generate(run, model, x0, k), Path(folder) / f"nfe{k}.png")
                for k in nfes(run, nfe_list)]
    lab, k_cls = class_labels(run, n, dev), run.model.n_classes
    return [save_png(generate(run, model, x0, k, lab, w), Path(folder) / f"nfe{k}_w{w:g}.png",
                     ncol=k_cls)
            for k in nfes(run, nfe_list) for w in (guidance or [run.guidance])]


def cmd_train(a) -> int:
    for path, check in ((a.out, writable_file), (a.preset, writable_file),
                        (a.grids, writable_dir)):
        if path:
            check(path)
    dev = pick_device(a.device)
    if a.resume:
        run, state = load(a.resume, dev)
        if a.steps and a.steps != run.optim.steps:  # a longer (or shorter) schedule
            run = dataclasses.replace(run, optim=dataclasses.replace(run.optim, steps=a.steps))
            state.cfg = run.optim
        out = writable_file(a.out or a.resume)
    else:
        d = read_json(a.config)
        if a.conditional:  # class labels with label dropout (classifier-free guidance)
            d["model"] = {**d.get("model", {}), "n_classes": N_CLASSES[d.get("data", "digits")]}
        d.update({k: v for k, v in (("label_drop", a.label_drop), ("guidance", a.guidance))
                  if v is not None})
        run = from_dict(ImageRun, d)
        if a.steps:
            run = dataclasses.replace(run, optim=dataclasses.replace(run.optim, steps=a.steps))
        teacher = None
        if run.method in ("reflow", "distill"):
            tp = teacher_path(run, Path(a.config).parent)
            teacher = load(tp, dev)[1].sampler_model
        state = build_image(run, dev, teacher=teacher)
        out = Path(a.out)
    if a.compile:  # for this process only: the checkpoints keep the run as configured
        compile_state(state, dataclasses.replace(run, compile=True, compile_mode=a.compile))
    print(f"{run.label} on {run.data} {run.model.dims} · {dev} · "
          f"{sum(p.numel() for p in state.model.parameters()) / 1e6:.2f}M parameters", flush=True)
    t0 = time.perf_counter()
    while not state.done:
        train_steps(state, a.chunk, log_every=max(1, min(10, a.chunk)))
        last = state.history[-1] if state.history else {}
        print(f"step {state.step:6d}  loss {last.get('loss', float('nan')):.4f}  "
              f"{time.perf_counter() - t0:7.1f}s", flush=True)
        checkpoint.save(out, state, run)  # resumable after every chunk
    if state.status == "nan":
        print(state.message, file=sys.stderr)
    print(f"saved {out}")
    if a.preset:
        p = checkpoint.save(a.preset, state, run, resumable=False)
        print(f"saved {p} ({p.stat().st_size / 2**20:.2f} MiB, no optimizer)")
    if a.grids:
        for p in write_grids(run, state.sampler_model, a.grids):
            print(f"wrote {p}")
    return 1 if state.status == "nan" else 0


def cmd_sample(a) -> int:
    writable_dir(a.out)
    dev = pick_device(a.device)
    run, state = load(a.checkpoint, dev)
    for p in write_grids(run, state.sampler_model, a.out, a.n, a.seed, a.nfe, a.guidance):
        print(f"wrote {p}")
    return 0


def cmd_classifier(a) -> int:
    from .data import digits
    from .frechet import ClassifierConfig, save_classifier, train_classifier

    writable_file(a.out)
    cfg = ClassifierConfig(size=a.size, steps=a.steps, width=a.width, augment=a.augment,
                           weight_decay=a.weight_decay)
    x, y = digits(a.size)
    model, acc = train_classifier(x, y, cfg, pick_device(a.device))
    p = save_classifier(a.out, model.cpu(), acc)
    print(f"held-out accuracy {acc:.3f} on {cfg.n_test} digits; saved {p}")
    return 0


def sample_sets(path, n: int = 1000, seed: int = 1, device="cpu", nfe_list=None,
                guidance=None):
    """(the training images, an iterator of (row fields, samples, labels or None)): the sample
    sets ``evaluate`` judges for one checkpoint. An image checkpoint: its samples at every NFE
    it supports (or those of ``nfe_list``); a conditional one, labels 0..K-1 repeated at each
    guidance weight w of ``guidance`` (None: the run's). A latent checkpoint (``image
    latent``): first the first n images themselves ("data") and their reconstructions D(E(x))
    ("reconstruction": what a perfect flow on these codes would score), then its decoded
    samples per NFE."""
    from .latent import LatentRun, decoded, latent_images, latent_noise

    run, done = checkpoint.load_all(path, device, ("image", "latent"))
    if isinstance(run, LatentRun):
        enc, state = checkpoint.latent_phases(done)
        x, z0 = latent_images(run, device), latent_noise(run, n, seed, device)
        row = {"checkpoint": str(path), "method": run.method, "encoder": run.encoder, "k": run.k}

        def latent_sets():
            yield {**row, "what": "data", "nfe": None}, x[:n], None
            yield {**row, "what": "reconstruction", "nfe": None}, enc.reconstruct(x[:n]), None
            for k in nfe_list or NFES:
                yield {**row, "what": "samples", "nfe": k}, decoded(run, enc, state.sampler_model,
                                                                    z0, k), None
        return x, latent_sets()
    state = done["run"]  # sampling only: a ReFlow / distill teacher is not needed (cf. load)
    x0 = noise(run, n, seed, device)
    lab = class_labels(run, n, device) if run.conditional else None

    def image_sets():
        for k in nfes(run, nfe_list or NFES):
            for w in (guidance or [run.guidance]) if run.conditional else [None]:
                row = {"checkpoint": str(path), "method": run.method, "nfe": k}
                yield {**row, **({} if lab is None else {"w": w})}, \
                    generate(run, state.sampler_model, x0, k, lab, w), lab
    return image_data(run)[0], image_sets()


def evaluate(paths, classifier: str, n: int = 1000, seed: int = 1, device="cpu",
             nfe_list=None, guidance=None, fid: bool = False, inception=None) -> list[dict]:
    """Each checkpoint's sample sets (:func:`sample_sets`) judged by the classifier (frechet:
    Fréchet distance in its feature space to the training images, confident share, classes);
    a conditional checkpoint's also on whether the classifier gives them the label they were
    conditioned on (frechet.label_agreement). ``fid``: also standard FID against the training
    images (flowviz.images.fid, Inception weights from ``inception`` or where fid.weights_path
    looks; n samples, so not comparable with published 50 000-sample FIDs)."""
    from .fid import fid_available, standard_fid
    from .frechet import features_and_probs, label_agreement, load_classifier, quality

    if fid and not (ok := fid_available(inception))[0]:
        raise ValueError(ok[1])
    clf, _ = load_classifier(classifier, device)
    rows = []
    for path in paths:
        data, sets = sample_sets(path, n, seed, device, nfe_list, guidance)
        ref = features_and_probs(clf, data)[0]
        for row, x, lab in sets:
            row.update(quality(clf, x, ref), n=len(x))
            tail = ""
            if lab is not None:
                row.update(label_agreement(clf, x, lab))
                tail = (f"  w {row['w']:g}  as conditioned {row['agree']:.3f}  (confident "
                        f"{row['agree_confident']:.3f})")
            if fid:
                row["fid"] = standard_fid(x, data, inception, device)
                tail += f"  FID {row['fid']:.2f}"
            name = f"NFE {row['nfe']}" if row["nfe"] else row["what"]
            print(f"{Path(path).name:28s} {name:>14s}  FD {row['fd']:8.3f}  confident "
                  f"{row['confident']:.3f}  classes {row['n_classes']}{tail}", flush=True)
            rows.append(row)
    return rows


def cmd_eval(a) -> int:
    if a.json:
        writable_file(a.json)
    rows = evaluate(a.checkpoints, a.classifier, a.n, a.seed, pick_device(a.device), a.nfe,
                    a.guidance, a.fid, a.inception)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


def cmd_latent(a) -> int:
    """Fit the encoder (or take it from ``--encoder``, a latent checkpoint of the same encoder
    settings), train the flow on its codes, save both (flowviz.checkpoint, kind "latent"; no
    optimizer: a checkpoint to sample from)."""
    from .latent import LatentRun, encoder_settings, fit_encoder, flow_on_codes, latent_images

    writable_file(a.out)
    if a.grids:
        writable_dir(a.grids)
    run = read_json(a.config, LatentRun)
    if a.steps:
        run = dataclasses.replace(run, optim=dataclasses.replace(run.optim, steps=a.steps))
    dev = pick_device(a.device)
    if a.encoder:
        other, enc, _ = checkpoint.load_latent(a.encoder, dev)
        if encoder_settings(other) != encoder_settings(run):
            raise ValueError(f"{a.encoder} holds the encoder {encoder_settings(other)}, not "
                             f"this config's {encoder_settings(run)}")
        print(f"encoder from {a.encoder} (fitted in {enc.seconds:.1f} s on {enc.machine})")
    else:
        enc, fit = fit_encoder(run, latent_images(run, dev))
        print(f"{run.encoder} encoder, k = {run.k}: "
              f"{'variance kept' if run.encoder == 'pca' else 'reconstruction MSE'} {fit:.4f} "
              f"in {enc.seconds:.1f} s on {enc.machine}", flush=True)
    state = flow_on_codes(run, enc, dev)
    while not state.done:
        train_steps(state, a.chunk, log_every=max(1, min(10, a.chunk)))
        print(f"step {state.step:6d}  loss {state.history[-1]['loss']:.4f}  "
              f"{state.seconds:7.1f}s", flush=True)
    if state.status == "nan":
        print(state.message, file=sys.stderr)
        return 1
    p = checkpoint.save(a.out, {"encoder": enc, "run": state}, run, resumable=False)
    print(f"saved {p} ({p.stat().st_size / 2**10:.0f} KiB)")
    if a.grids:
        from .latent import decoded, latent_noise

        z0 = latent_noise(run, 64, 0, dev)
        for k in NFES:
            x = decoded(run, enc, state.sampler_model, z0, k)
            print(f"wrote {save_png(x, Path(a.grids) / f'nfe{k}.png')}")
    return 0


def cmd_config(a) -> int:
    run = ImageRun(method=a.method, teacher="teacher.pt" if a.method in ("reflow", "distill")
                   else "")
    print(run.to_json())
    return 0


NFE = bounded(1, 1024)
GUIDANCE = bounded(0.0, 20.0, float)


def add_parser(sub) -> None:
    """Register ``image`` with its own sub-commands on the main CLI's subparsers."""
    img = sub.add_parser("image", help="image runs: train, sample, config (see flowviz.images)",
                         description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    isub = img.add_subparsers(dest="image_cmd", required=True)
    t = isub.add_parser("train", help="train an ImageRun (or resume one)")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="an ImageRun JSON")
    src.add_argument("--resume", help="continue from this checkpoint")
    t.add_argument("--out", help="checkpoint path (.pt); default: the resumed file")
    t.add_argument("--steps", type=bounded(0, 1_000_000), default=0,
                   help="total steps (0: the config's)")
    t.add_argument("--chunk", type=bounded(1, 1_000_000), default=500,
                   help="steps between checkpoints")
    t.add_argument("--preset", help="also save the weights without the optimizer here")
    t.add_argument("--grids", help="write sample grids (one PNG per NFE) to this folder")
    t.add_argument("--conditional", action="store_true",
                   help="class-conditional FM: model.n_classes = the data's class count")
    t.add_argument("--label-drop", type=bounded(0.0, 0.99, float), default=None,
                   help="label dropout p of classifier-free guidance (default: the config's)")
    t.add_argument("--guidance", type=GUIDANCE, default=None,
                   help="the guidance weight w its grids use (default: the config's)")
    t.add_argument("--device", default="auto")
    t.add_argument("--compile", nargs="?", const="default", choices=COMPILE_MODES,
                   help="torch.compile this training (mode, default 'default'); not saved")
    s = isub.add_parser("sample", help="sample grids of a checkpoint, one PNG per NFE")
    s.add_argument("checkpoint")
    s.add_argument("--nfe", type=NFE, nargs="+", default=list(NFES))
    s.add_argument("--n", type=bounded(1, 1024), default=64)
    s.add_argument("--seed", type=SEED, default=0)
    s.add_argument("--out", required=True, help="folder for the PNGs")
    s.add_argument("--guidance", type=GUIDANCE, nargs="+", default=None,
                   help="conditional runs: guidance weights w (default: the run's)")
    s.add_argument("--device", default="auto")
    k = isub.add_parser("classifier", help="train the digits classifier of the quality metric")
    k.add_argument("--out", required=True)
    k.add_argument("--size", type=bounded(4, 64), default=16)
    k.add_argument("--steps", type=bounded(1, 100_000), default=1500)
    k.add_argument("--width", type=bounded(1, 256), default=32)
    k.add_argument("--augment", default="shift", choices=("shift", "affine"))
    k.add_argument("--weight-decay", type=bounded(0.0, 1.0, float), default=0.0)
    k.add_argument("--device", default="auto")
    e = isub.add_parser("eval", help="classifier-feature Fréchet distance and confidence vs NFE "
                        "(image or latent checkpoints)")
    e.add_argument("checkpoints", nargs="+")
    e.add_argument("--classifier", required=True)
    e.add_argument("--n", type=bounded(2, 50_000), default=1000)
    e.add_argument("--seed", type=SEED, default=1)
    e.add_argument("--json")
    e.add_argument("--nfe", type=NFE, nargs="+", default=None, help="default: every NFE")
    e.add_argument("--guidance", type=GUIDANCE, nargs="+", default=None,
                   help="conditional runs: guidance weights w (default: the run's)")
    e.add_argument("--fid", action="store_true", help="also standard FID (torch-fidelity; "
                   "needs the Inception weights on disk, see flowviz/images/fid.py)")
    e.add_argument("--inception", help="the Inception weights file for --fid")
    e.add_argument("--device", default="auto")
    lt = isub.add_parser("latent", help="fit an encoder, train a flow on its codes, save both")
    lt.add_argument("--config", required=True, help="a LatentRun JSON")
    lt.add_argument("--out", required=True, help="checkpoint path (.pt)")
    lt.add_argument("--steps", type=bounded(0, 1_000_000), default=0,
                    help="flow steps (0: the config's)")
    lt.add_argument("--chunk", type=bounded(1, 1_000_000), default=500,
                    help="steps between progress lines")
    lt.add_argument("--grids", help="write decoded sample grids (one PNG per NFE) here")
    lt.add_argument("--encoder", help="reuse the encoder of this latent checkpoint")
    lt.add_argument("--device", default="auto")
    c = isub.add_parser("config", help="print a default ImageRun JSON")
    c.add_argument("--method", default="fm", choices=METHODS)


def cmd_image(a) -> int:
    if a.image_cmd == "train" and a.config and not a.out:
        print("error: --out is required with --config", file=sys.stderr)
        return 2
    try:
        return {"train": cmd_train, "sample": cmd_sample, "config": cmd_config,
                "classifier": cmd_classifier, "eval": cmd_eval,
                "latent": cmd_latent}[a.image_cmd](a)
    except (ImageDataError, ConfigError, ValueError, OSError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
