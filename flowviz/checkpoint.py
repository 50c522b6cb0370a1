"""Checkpoints: config + each phase's weights (+ optimizer for resuming), loaded safely.

Files are plain dicts of tensors, numbers, strings and lists, written with torch.save and read
with ``torch.load(weights_only=True)``: nothing in a checkpoint is ever unpickled as code. Before
that, the archive's declared sizes and the pickle's opcodes are inspected (``inspect``), so a
zip bomb, a few KB of shared references that unfold into billions of nodes, or a nesting too
deep to walk is refused before anything is built. One
format serves every run kind of flowviz.experiment: a run is a sequence of phases
(``experiment.phases``), each a TrainState (weights) or a reflow PairPhase (the solved pairs);
a latent run (flowviz.images.latent) is its fitted Encoder, then the flow on its codes.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickletools
import zipfile
from pathlib import Path

import torch

from .config import ConfigError, parse_json
from .experiment import FMRun, MeanFlowRun, ReflowRun, ShortcutRun, phases
from .images.experiment import ImageRun, build_image
from .images.latent import Encoder, LatentRun, empty_encoder, flow_on_codes
from .methods.instaflow import InstaFlowRun
from .methods.reflow import PairGeneration, PairPhase
from .train import TrainState

FORMAT = "flowviz-checkpoint/2"
KINDS = {"fm": FMRun, "shortcut": ShortcutRun, "meanflow": MeanFlowRun, "reflow": ReflowRun,
         "image": ImageRun, "instaflow": InstaFlowRun, "latent": LatentRun}
MAX_BYTES = 50 * 2**20  # an upload larger than this is refused before it is read
MAX_JSON_BYTES = 64 * 2**10
# What a checkpoint's pickle may build (the largest flowviz checkpoint, an image run with its
# history, has ~60 kB of pickle, a few hundred tensors and depth ~10 in ``_pickle_shape``'s count)
MAX_PICKLE_BYTES = 4 * 2**20
MAX_TREE = 2_000_000  # objects a walk over the loaded value visits (shared ones once per use)
MAX_DEPTH = 64
MAX_TENSORS = 10_000


class CheckpointError(ValueError):
    """A file that is not a usable flowviz checkpoint; the message is shown to the user."""


def kind_of(run) -> str:
    return kind_of_cls(type(run))


def _train_dict(s: TrainState, resumable: bool) -> dict:
    slim = not resumable and s.ema is not None  # sampling needs only the EMA weights
    return {"model": None if slim else s.model.state_dict(),
            "ema": s.ema.state_dict() if s.ema is not None else None,
            "optimizer": s.opt.state_dict() if resumable else None,
            "generator": s.generator.get_state(), "step": s.step, "seconds": s.seconds,
            "history": s.history}


def _gen_dict(g: PairGeneration) -> dict:
    if not g.done:
        raise ValueError("save a pair phase once it is finished")
    return {"out": torch.cat(g.out), "nfe": g.nfe, "seconds": g.seconds,
            "chunk_nfe": list(g.chunk_nfe)}


def _encoder_dict(e: Encoder) -> dict:
    return {"weights": e.net.state_dict(), "seconds": e.seconds, "machine": e.machine}


def _pairs_dict(p: PairPhase | PairGeneration) -> dict:
    if isinstance(p, PairGeneration):  # one solve job (e.g. InstaFlow's triples)
        return {"forward": _gen_dict(p), "backward": None}
    return {name: None if g is None else _gen_dict(g)
            for name, g in (("forward", p.forward), ("backward", p.backward))}


def save(path: str | Path, state, run, resumable: bool = True) -> Path:
    """Write ``run``'s config and its finished phases: a TrainState, or a dict name -> phase
    (TrainState or finished PairPhase) as ``experiment.phases`` names them. ``resumable=False``
    leaves out the optimizer and, when there is an EMA copy, the online weights (a finished
    preset that pages only sample from: a quarter of the size)."""
    done = state if isinstance(state, dict) else {"run": state}
    out = {}
    for name, s in done.items():
        out[name] = _pairs_dict(s) if isinstance(s, PairPhase | PairGeneration) else \
            _encoder_dict(s) if isinstance(s, Encoder) else _train_dict(s, resumable)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # written beside it, then renamed: a write killed midway leaves the previous file whole
    # (and at most this one hidden temporary file, replaced by the next save)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save({"format": FORMAT, "kind": kind_of(run), "config": dataclasses.asdict(run),
                    "phases": out}, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read(path_or_file, max_bytes: int | None = None) -> dict:
    """Load and validate the raw checkpoint dict (weights_only: no code is unpickled). An
    upload (a file object) over ``max_bytes`` (default MAX_BYTES) is refused before it is read;
    a path on this machine has no limit by default (a 35M-parameter image run with its
    optimizer is ~0.5 GiB)."""
    local = isinstance(path_or_file, str | Path)
    max_bytes = (None if local else MAX_BYTES) if max_bytes is None else max_bytes
    size = _size(path_or_file)
    if max_bytes is not None and size is not None and size > max_bytes:
        raise CheckpointError(f"The file is {size / 2**20:.1f} MiB; the limit is "
                              f"{max_bytes / 2**20:.0f} MiB.")
    try:
        inspect(path_or_file)
        ck = torch.load(path_or_file, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure to read becomes a user message
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(f"Not a readable checkpoint ({type(e).__name__}: {first[:120]}). "
                              "Only files saved by flowviz load; nothing else is unpickled.") \
            from None
    _check_tensors(ck, size)
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"Not a flowviz checkpoint (expected format {FORMAT!r}).")
    if ck.get("kind") not in KINDS:
        raise CheckpointError(f"Unknown model kind {ck.get('kind')!r}; flowviz saves "
                              f"{', '.join(KINDS)}.")
    return ck


def inspect(path_or_file) -> None:
    """Refuse, before torch.load builds anything, an archive that is not what torch.save
    writes: members declaring more bytes than the file holds (torch.save stores them
    uncompressed, so more is a zip bomb), too many tensors, or a pickle whose value is too
    large to walk, nested too deeply or cyclic (``_pickle_shape``)."""
    f = open(path_or_file, "rb") if isinstance(path_or_file, str | Path) else path_or_file
    here = f.tell()
    try:
        if not zipfile.is_zipfile(f):
            raise CheckpointError("Not a readable checkpoint (not a zip archive): only files "
                                  "saved by flowviz load.")
        size = f.seek(0, 2)
        with zipfile.ZipFile(f) as z:
            infos = z.infolist()
            unpacked = sum(i.file_size for i in infos)
            if unpacked > size:
                raise CheckpointError(f"The archive declares {unpacked / 2**20:.0f} MiB "
                                      f"unpacked in a {size / 2**20:.1f} MiB file: a compressed "
                                      "archive is not a flowviz checkpoint.")
            if len(infos) > MAX_TENSORS + 10:
                raise CheckpointError(f"The archive has {len(infos)} members; a checkpoint has "
                                      f"at most {MAX_TENSORS} tensors.")
            pkl = [i for i in infos if i.filename.endswith("data.pkl")]
            if len(pkl) != 1 or pkl[0].file_size > MAX_PICKLE_BYTES:
                raise CheckpointError("Not a flowviz checkpoint (no data.pkl of at most "
                                      f"{MAX_PICKLE_BYTES >> 20} MiB in the archive).")
            raw = z.read(pkl[0])
    finally:
        if f is path_or_file:
            f.seek(here)
        else:
            f.close()
    tree, depth, tensors = _pickle_shape(raw)
    if tensors > MAX_TENSORS:
        raise CheckpointError(f"The checkpoint holds {tensors} tensors; the limit is "
                              f"{MAX_TENSORS}.")
    if depth > MAX_DEPTH:
        raise CheckpointError(f"The checkpoint's data is nested {depth} levels deep; the limit "
                              f"is {MAX_DEPTH}.")


# pickle opcodes that add to an object already on the stack (the first item they pop)
_MUTATORS = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}


def _pickle_shape(raw: bytes) -> tuple[int, int, int]:
    """(tree size, depth, persistent ids = tensor storages) of the value that pickle ``raw``
    builds, read from its opcodes without building it. The tree size counts a shared object
    once per reference, as a walk over the loaded value does: 2 KB of references to references
    that unfold into 2**60 nodes show here. A cycle, or a tree over MAX_TREE, is refused."""
    kids: list[list[int]] = []  # object -> the objects it holds
    stack, marks, memo, pids = [], [], {}, 0
    for op, arg, _ in pickletools.genops(raw):
        name = op.name
        if name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo[arg])
        elif name == "MARK":
            marks.append(len(stack))
        elif name == "POP_MARK":
            del stack[marks.pop():]
        elif name == "POP":
            stack.pop()
        elif name == "DUP":
            stack.append(stack[-1])
        elif name not in ("PROTO", "FRAME", "STOP"):
            pids += name in ("PERSID", "BINPERSID")
            before = op.stack_before
            items = []
            if pickletools.markobject in before:  # the items above the last MARK
                m = marks.pop()
                items, stack[m:] = stack[m:], []
                fixed = before.index(pickletools.markobject)  # e.g. APPENDS' list, below it
            else:
                fixed = len(before)
            if fixed:
                items, stack[-fixed:] = stack[-fixed:] + items, []
            if name in _MUTATORS:
                kids[items[0]].extend(items[1:])
                stack.append(items[0])
            else:
                kids.append(items)
                stack.extend([len(kids) - 1] * len(op.stack_after))
    if not stack:
        raise CheckpointError("Not a readable checkpoint (an empty pickle).")
    size, depth = _tree(kids, stack[-1])
    return size, depth, pids


def _tree(kids: list[list[int]], root: int) -> tuple[int, int]:
    """(size, depth) of the tree that unfolds from ``root`` (iterative: no recursion limit)."""
    size, depth, state = {}, {}, {}  # state: 1 being walked, 2 done
    todo = [(root, False)]
    while todo:
        v, leaving = todo.pop()
        if leaving:
            size[v] = 1 + sum(size[c] for c in kids[v])
            depth[v] = 1 + max((depth[c] for c in kids[v]), default=0)
            state[v] = 2
            if size[v] > MAX_TREE:
                raise CheckpointError(f"The checkpoint's data unfolds into more than {MAX_TREE:,} "
                                      "objects (shared references): refused.")
            continue
        if state.get(v) == 2:
            continue
        if state.get(v) == 1:
            raise CheckpointError("The checkpoint's data refers to itself (a cycle): refused.")
        state[v] = 1
        todo.append((v, True))
        todo.extend((c, False) for c in kids[v] if state.get(c) != 2)
    return size[root], depth[root]


def _check_tensors(ck, file_size: int | None) -> None:
    """Refuse tensors that claim more elements than the file can hold (a view with stride 0
    over one stored number can claim 10**12): each within its storage, all within the file."""
    seen, todo, total = set(), [ck], 0
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if torch.is_tensor(obj):
            need = obj.numel() * obj.element_size()
            if need > obj.untyped_storage().nbytes() + obj.element_size():
                raise CheckpointError(f"A tensor of shape {tuple(obj.shape)} claims more "
                                      "elements than it stores: refused.")
            total += need
        elif isinstance(obj, dict):
            todo.extend(obj.values())
        elif isinstance(obj, list | tuple):
            todo.extend(obj)
    if file_size is not None and total > 4 * file_size:
        raise CheckpointError(f"The checkpoint's tensors claim {total / 2**20:.0f} MiB in a "
                              f"{file_size / 2**20:.1f} MiB file: refused.")


def _size(f) -> int | None:
    if isinstance(f, str | Path):
        return Path(f).stat().st_size if Path(f).exists() else None
    if hasattr(f, "seek") and hasattr(f, "tell"):
        here = f.tell()
        f.seek(0, 2)
        n = f.tell()
        f.seek(here)
        return n
    return None


def load_all(path_or_file, device="cpu", kind: str | tuple[str, ...] | None = None,
             uploaded: torch.Tensor | None = None) -> tuple[object, dict]:
    """(run, {phase name: state}) rebuilt from a checkpoint written by ``save``; ``kind`` (one
    or a tuple) refuses a checkpoint of another model kind with a clear message."""
    ck = read(path_or_file)
    kinds = (kind,) if isinstance(kind, str) else kind
    if kinds is not None and ck["kind"] not in kinds:
        raise CheckpointError(f"This checkpoint holds a {ck['kind']!r} model, not "
                              f"{' or '.join(map(repr, kinds))}.")
    try:
        run = KINDS[ck["kind"]].from_dict(ck["config"])
    except ConfigError as e:
        raise CheckpointError(f"The checkpoint's config is invalid: {e}") from None
    if (bad := _nonfinite(ck.get("phases", {}))) is not None:
        raise CheckpointError(f"The checkpoint holds NaN or infinite values ({bad.lstrip('/')})"
                              ": a diverged run cannot be shown.")
    done = {}
    try:
        for name, build in _phases(run, device, uploaded).items():
            if name not in ck["phases"]:
                break  # a run saved part-way (e.g. ReFlow after its first round)
            done[name] = _restore(build(done), ck["phases"][name], device)
    except CheckpointError:
        raise
    except (KeyError, TypeError, RuntimeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"Checkpoint does not match its config: {e}") from None
    if not done:
        raise CheckpointError("The checkpoint holds no trained phase.")
    return run, done


def _phases(run, device, uploaded):
    if isinstance(run, ImageRun):  # one phase; a ReFlow/distill teacher is its own file
        return {"run": lambda done: build_image(run, device)}
    if isinstance(run, LatentRun):  # the encoder, then the flow on its codes of the digits
        return {"encoder": lambda done: empty_encoder(run, device),
                "run": lambda done: flow_on_codes(run, done["encoder"], device)}
    return phases(run, device, uploaded)


def _nonfinite(obj, where: str = "") -> str | None:
    """The path of the first floating tensor in ``obj`` with a NaN or inf, else None."""
    if torch.is_tensor(obj):
        return where if obj.is_floating_point() and not bool(torch.isfinite(obj).all()) \
            else None
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) \
        if isinstance(obj, list | tuple) else ()
    return next((b for k, v in items if (b := _nonfinite(v, f"{where}/{k}")) is not None), None)


def _restore(s, d: dict, device):
    if isinstance(s, Encoder):
        s.net.load_state_dict(d["weights"])
        s.seconds, s.machine = float(d["seconds"]), str(d["machine"])
        return s
    if isinstance(s, PairPhase | PairGeneration):
        jobs = (s.forward, s.backward) if isinstance(s, PairPhase) else (s, None)
        for g, name in zip(jobs, ("forward", "backward"), strict=True):
            if g is not None:
                g.out, g.nfe, g.seconds = [d[name]["out"].to(device)], d[name]["nfe"], \
                    d[name]["seconds"]
                g.chunk_nfe = list(d[name].get("chunk_nfe", [g.nfe]))
                if g.out[0].shape != g.x.shape:
                    raise CheckpointError(f"Checkpoint does not match its config: {name} pairs "
                                          f"of shape {tuple(g.out[0].shape)}, expected "
                                          f"{tuple(g.x.shape)}.")
        return s
    s.model.load_state_dict(d["model"] if d["model"] is not None else d["ema"])
    if s.ema is not None:
        s.ema.load_state_dict(d["ema"] if d["ema"] is not None else d["model"])
    if d["optimizer"] is not None:
        s.opt.load_state_dict(d["optimizer"])
    try:
        s.generator.set_state(d["generator"])
    except RuntimeError:  # saved by a generator of another device (CUDA's state is not CPU's)
        s.generator.manual_seed(int(s.cfg.seed) + int(d["step"]))
    s.step, s.seconds, s.history = int(d["step"]), float(d["seconds"]), list(d["history"])
    s.status = "done" if s.done else "ready"
    return s


def load(path_or_file, device="cpu", kind: str | None = None,
         uploaded: torch.Tensor | None = None) -> tuple[object, TrainState]:
    """(run, the last trained state): the resumable state of a one-phase run."""
    run, done = load_all(path_or_file, device, kind, uploaded)
    return run, list(done.values())[-1]


def load_fm(path_or_file, device="cpu") -> tuple[FMRun, TrainState]:
    """Rebuild a resumable 1-RF training state from a checkpoint written by ``save``."""
    return load(path_or_file, device, "fm")


def load_latent(path_or_file, device="cpu") -> tuple[LatentRun, Encoder, TrainState]:
    """(run, its encoder, the flow on its codes) of a latent checkpoint."""
    run, done = load_all(path_or_file, device, "latent")
    return run, *latent_phases(done)


def latent_phases(done: dict) -> tuple[Encoder, TrainState]:
    """(encoder, flow) of a loaded latent checkpoint's phases."""
    if "run" not in done:
        raise CheckpointError("The checkpoint holds an encoder but no trained flow.")
    return done["encoder"], done["run"]


def load_upload(name: str, raw: bytes, cls, device="cpu", uploaded: torch.Tensor | None = None):
    """A user's file for a run of type ``cls``: a .json config (a run's config, or a preset
    file with "kind" and "config") -> (run, None), or a .pt checkpoint -> (run, its last
    state). Everything wrong raises CheckpointError with a message for the user."""
    kind = kind_of_cls(cls)
    if name.lower().endswith(".json"):
        if len(raw) > MAX_JSON_BYTES:
            raise CheckpointError(f"The config is {len(raw) / 1024:.0f} KiB; the limit is "
                                  f"{MAX_JSON_BYTES // 1024} KiB.")
        try:
            d = parse_json(raw)
        except ConfigError as e:
            raise CheckpointError(f"Not a JSON file: {e}") from None
        try:
            if isinstance(d, dict) and "config" in d and "kind" in d:
                if d["kind"] != kind:
                    raise CheckpointError(f"This config is for a {str(d['kind'])[:40]!r} "
                                          f"model, not {kind!r}.")
                d = d["config"]
            return cls.from_dict(d), None
        except ConfigError as e:
            raise CheckpointError(f"Invalid config: {e}") from None
    if name.lower().endswith(".pt"):
        return load(io.BytesIO(raw), device, kind, uploaded)
    raise CheckpointError("Upload a .pt checkpoint or a .json config.")


def kind_of_cls(cls) -> str:
    return next(k for k, c in KINDS.items() if c is cls)
