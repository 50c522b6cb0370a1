"""An image run as one frozen, JSON-serialisable config -> a flowviz.train TrainState.

The objectives are flowviz.methods' own (fm, reflow, distill, shortcut, meanflow): only the
network (flowviz.models.TimeUNet) and the samplers of x0 ~ N(0, I) and x1 ~ images change.
On a GPU: bf16 compute (flowviz.models.unet.set_precision: casts that MeanFlow's JVP can
differentiate, unlike torch.autocast), channels_last weights, optional torch.compile (in place,
so checkpoints keep plain parameter names).

Class-conditional flow matching with classifier-free guidance (article §4.1; Ho & Salimans
2022): a run whose ``model.n_classes`` is set trains on the images' labels, each dropped to the
U-Net's "no label" token with probability ``label_drop`` (flowviz.methods.fm.drop_labels, as the
2-D InstaFlow teacher), and samples with u = u(. | ∅) + w (u(. | c) - u(. | ∅))
(flowviz.methods.fm.guided: w = 0 unconditional, w = 1 plain conditional, w > 1 guided).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from ..config import JSONConfig
from ..device import cuda_graphed
from ..methods import meanflow, shortcut
from ..methods.distill import distill_objective, one_step
from ..methods.fm import fm_objective, guided
from ..methods.meanflow import MeanFlowConfig, MeanFlowObjective, MeanVelocity
from ..methods.reflow import ReflowConfig, pair_phase, reflow_objective
from ..methods.shortcut import ShortcutConfig, ShortcutObjective
from ..models import DIGITS_UNET, TimeUNet, UNetConfig
from ..models.unet import set_precision
from ..solvers import solve
from ..train import OptimConfig, TrainState, init_state
from .data import DATASETS, digits, load_cifar, normal_sampler, seeded_normal, tensor_sampler

METHODS = ("fm", "reflow", "distill", "shortcut", "meanflow")
LABELS = {"fm": "Flow matching (1-RF)", "reflow": "2-rectified flow", "distill":
          "2-RF + distill (InstaFlow)", "shortcut": "Shortcut", "meanflow": "MeanFlow"}
PRECISIONS = ("fp32", "bf16")
NFES = (1, 2, 4, 8, 16, 32, 64, 128)
N_CLASSES = {"digits": 10, "cifar10": 10}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")  # the modes that replay CUDA graphs


@dataclass(frozen=True)
class ImageRun(JSONConfig):
    method: str = "fm"  # a METHODS name
    data: str = "digits"  # "digits" (scikit-learn, offline) or "cifar10" (a local folder)
    size: int = 16  # digits side (8: native; larger: bilinear upsampling); CIFAR is 32
    root: str = ""  # CIFAR-10 folder (official python batches)
    n_data: int = 0  # keep the first n_data images (0: all)
    batch: int = 128
    model: UNetConfig = field(default_factory=lambda: DIGITS_UNET)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(steps=2000, lr=2e-3))
    shortcut: ShortcutConfig = field(default_factory=ShortcutConfig)
    meanflow: MeanFlowConfig = field(default_factory=MeanFlowConfig)
    # reflow / distill: pairs (n_pairs, solver, steps) from the teacher checkpoint's flow
    reflow: ReflowConfig = field(default_factory=lambda: ReflowConfig(
        n_pairs=4096, solver="rk4", steps=32, chunk=1024, init="previous"))
    teacher: str = ""  # checkpoint of the previous stage (reflow: 1-RF; distill: 2-RF)
    precision: str = "fp32"  # or "bf16" compute (weights and optimizer stay fp32)
    channels_last: bool = False
    compile: bool = False
    # torch.compile's mode: "default", or "reduce-overhead" (CUDA graphs: the step is replayed
    # as graphs, no per-kernel launch cost; needs fixed shapes: FM and Shortcut, not MeanFlow,
    # whose JVP target is a CUDA graph of its own), "max-autotune"...
    compile_mode: str = "default"
    # on a GPU, the no-grad targets (MeanFlow's JVP: ~700 small kernels; Shortcut's half steps)
    # are replayed as one CUDA graph (flowviz.device.cuda_graphed), unless a compile mode with
    # CUDA graphs compiles Shortcut's with the network; False: launched (or compiled) as is
    graph_target: bool = True
    # class-conditional FM (model.n_classes > 0): label dropout p of classifier-free guidance,
    # and the guidance weight w that sampling uses by default
    label_drop: float = 0.1
    guidance: float = 1.0
    BOUNDS: ClassVar[dict] = {"size": (4, 128), "n_data": (0, 1_000_000), "batch": (1, 4096),
                              "label_drop": (0.0, 0.99), "guidance": (0.0, 20.0)}

    def __post_init__(self):
        for name, v, ok in (("method", self.method, METHODS), ("data", self.data, DATASETS),
                            ("precision", self.precision, PRECISIONS),
                            ("compile_mode", self.compile_mode, COMPILE_MODES)):
            if v not in ok:
                raise ValueError(f"{name} must be one of {', '.join(ok)}")
        if self.method in ("reflow", "distill") and not self.teacher:
            raise ValueError(f"method {self.method!r} needs a teacher checkpoint")
        dims = (3, 32, 32) if self.data == "cifar10" else (1, self.size, self.size)
        if self.model.dims != dims:
            raise ValueError(f"model.channels/size give images {self.model.dims}, but "
                             f"{self.data} at this size is {dims}")
        if self.conditional:
            if self.method != "fm":
                raise ValueError("class-conditional runs (model.n_classes > 0) are method 'fm'")
            if self.model.n_classes != N_CLASSES[self.data]:
                raise ValueError(f"{self.data} has {N_CLASSES[self.data]} classes: set "
                                 f"model.n_classes to it (or 0: unconditional)")
        if self.method == "meanflow" and self.compile and self.compile_mode not in (
                "default", "max-autotune-no-cudagraphs"):
            raise ValueError("MeanFlow compiles without CUDA graphs (compile_mode 'default'): "
                             "its JVP target is replayed as a CUDA graph of its own")
        if not 0.0 <= self.label_drop < 1.0:
            raise ValueError("label_drop must be in [0, 1)")

    @property
    def n_scalars(self) -> int:
        return 2 if self.method in ("shortcut", "meanflow") else 1

    @property
    def label(self) -> str:
        return LABELS[self.method] + (" · class-conditional" if self.conditional else "")

    @property
    def conditional(self) -> bool:
        """Trained on class labels (with label dropout): samples take a label and a w."""
        return self.model.n_classes > 0


@functools.lru_cache(maxsize=4)
def _images(data: str, size: int, root: str, n_data: int):
    x, y = digits(size) if data == "digits" else load_cifar(root, limit=n_data)
    return (x[:n_data], y[:n_data]) if n_data else (x, y)


def image_data(run: ImageRun, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """The training images (N, C, H, W) in [-1, 1] and their labels, on ``device``."""
    x, y = _images(run.data, run.size, run.root, run.n_data)
    return x.to(device), y.to(device)


def data_sampler(run: ImageRun, device="cpu"):
    """:func:`tensor_sampler` of the run's training images, read at the first draw: a checkpoint
    loads (to sample from, or to show) where its training data is absent, e.g. a CIFAR-10 run
    copied off the GPU machine; training there stops with the loader's message."""
    sample = None

    def draw(n: int, g: torch.Generator):
        nonlocal sample
        if sample is None:
            sample = tensor_sampler(*image_data(run, device))
        return sample(n, g)

    return draw


class UNetMeanVelocity(MeanVelocity):
    """MeanFlow's u(x, t, r) = net(x, t, r - t) with the U-Net as ``net`` (forward and velocity
    are MeanVelocity's)."""

    def __init__(self, cfg: UNetConfig):
        nn.Module.__init__(self)
        self.net = TimeUNet(dataclasses.replace(cfg, n_scalars=2))


def build_model(run: ImageRun, device="cpu") -> nn.Module:
    """The run's network with weights from the seed alone."""
    cfg = dataclasses.replace(run.model, n_scalars=run.n_scalars)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.optim.seed)
        model = UNetMeanVelocity(cfg) if run.method == "meanflow" else TimeUNet(cfg)
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if run.channels_last else model


def teacher_pairs(run: ImageRun, teacher: nn.Module, device="cpu"):
    """The teacher's (x0, ODE(x0)) pairs: reflow step 1 (flowviz.methods.reflow), noise drawn
    with seed optim.seed + 100."""
    g = torch.Generator().manual_seed(run.optim.seed + 100)
    x0 = normal_sampler(run.model.dims)(run.reflow.n_pairs, g)[0].to(device)
    return pair_phase(teacher.eval(), x0, run.reflow).run().result()[0]


class PairObjective:
    """ReFlow's or distillation's objective on the teacher's pairs, solved at the first call
    (so a checkpoint loads for sampling without the teacher; resuming solves the same pairs
    again: seeded noise, deterministic ODE). ``teacher``: () -> the teacher network."""

    def __init__(self, run: ImageRun, teacher):
        self.run, self.teacher, self.objective = run, teacher, None
        self.pair_seconds = 0.0

    def __call__(self, model, g):
        if self.objective is None:
            run, dev = self.run, next(model.parameters()).device
            pairs = teacher_pairs(run, self.teacher(), dev)
            self.pair_seconds = pairs.seconds
            if run.method == "reflow":
                self.objective = reflow_objective(pairs, run.batch, run.reflow.sampler(),
                                                  run.reflow.loss_fn(pairs.x0[0].numel()))
            else:
                self.objective = distill_objective(pairs, run.batch)
        return self.objective(model, g)


def build_image(run: ImageRun, device="cpu", teacher=None,
                images: tuple[torch.Tensor, torch.Tensor] | None = None) -> TrainState:
    """A fresh training state for ``run``. ReFlow / distillation start from the weights of
    ``teacher`` (a network, or a () -> network callable, needed only once training starts).
    ``images``: (x, labels) to train on instead of the run's data set (benchmarks)."""
    device = torch.device(device)
    model = build_model(run, device)
    if run.method in ("reflow", "distill"):
        get = teacher if callable(teacher) and not isinstance(teacher, nn.Module) else \
            (lambda: teacher)
        if isinstance(teacher, nn.Module):  # Lee et al. / InstaFlow: start from the teacher
            model.load_state_dict(teacher.state_dict())
        objective = PairObjective(run, get)
    else:
        x0 = normal_sampler(run.model.dims)
        x1 = data_sampler(run, device) if images is None else \
            tensor_sampler(*(t.to(device) for t in images))
        objective = {"fm": lambda: fm_objective(x0, x1, run.batch, n_classes=run.model.n_classes,
                                                p_uncond=run.label_drop),
                     "shortcut": lambda: ShortcutObjective(x0, x1, run.batch, run.shortcut),
                     "meanflow": lambda: MeanFlowObjective(x0, x1, run.batch, run.meanflow),
                     }[run.method]()
    state = init_state(model, objective, run.optim)
    if device.type == "cuda" and run.method in ("fm", "shortcut", "meanflow"):
        # noise, times and batch indices drawn on the GPU (the images are there already): no
        # host round trip per step. A checkpoint keeps this generator's state; loaded on a CPU
        # it is reseeded (flowviz.checkpoint), which only matters for resuming there.
        state.generator = torch.Generator(device).manual_seed(run.optim.seed)
    for m in (state.model, state.ema):
        if m is not None:
            set_precision(m, torch.bfloat16 if run.precision == "bf16" else None)
    if run.graph_target and device.type == "cuda" and run.method in ("shortcut", "meanflow"):
        state.objective.target = cuda_graphed(state.objective.target)
    if run.compile:
        compile_state(state, run)
    return state


def compile_state(state: TrainState, run: ImageRun) -> None:
    """torch.compile the network in place (checkpoints keep plain parameter names) with
    run.compile_mode. The no-grad targets that build_image graphed on a GPU stay CUDA graphs,
    captured eagerly through the compiled network (MeanFlow's JVP always: torch 2.11's inductor
    cannot lower the JVP's convolutions), except Shortcut's under a mode with CUDA graphs of
    its own, which compiles it with the network; an ungraphed Shortcut target is compiled."""
    mode = None if run.compile_mode == "default" else run.compile_mode
    state.model.compile(mode=mode)
    if run.method != "shortcut":
        return
    target = state.objective.target
    graphed = isinstance(target, cuda_graphed)
    if not graphed or run.compile_mode in CUDA_GRAPH_MODES:
        # torch.compile's own CUDA graphs replace build_image's graph of the target
        state.objective.target = torch.compile(target.fn if graphed else target, mode=mode)


@torch.no_grad()
def generate(run: ImageRun, model: nn.Module, x0: torch.Tensor, nfe: int,
             label: torch.Tensor | None = None, w: float | None = None) -> torch.Tensor:
    """Samples from noise x0 with exactly ``nfe`` network calls: Euler for flows, M-step
    shortcut sampling, MeanFlow jumps; the distilled student has one step only (nfe = 1).
    A conditional run with ``label`` (N,) samples the guided field (``w``: run.guidance if
    None) with ``nfe`` Euler steps, each two network calls (one when w = 1); without a label,
    the unconditional field."""
    model = model.eval()
    if label is not None:
        if not run.conditional:
            raise ValueError("this run is unconditional: sample it without labels")
        f = guided(model, run.guidance if w is None else w)
        return solve(functools.partial(f, label=label.to(x0.device)), x0, "euler", nfe).x
    if run.method == "distill":
        if nfe != 1:
            raise ValueError("the distilled student is a one-step generator (nfe = 1)")
        return one_step(model, x0)
    if run.method == "shortcut":
        return shortcut.sample(model, x0, nfe).x
    if run.method == "meanflow":
        return meanflow.sample(model, x0, nfe).x
    return solve(model, x0, "euler", nfe).x


def nfes(run: ImageRun, nfe_list=NFES) -> list[int]:
    """The NFEs a run can sample with (the student: 1 only)."""
    return [1] if run.method == "distill" else list(nfe_list)


def class_labels(run: ImageRun, n: int, device="cpu") -> torch.Tensor:
    """Labels 0, 1, ..., K-1, 0, 1, ... (n of them) for a conditional run's samples."""
    return torch.arange(n, device=device) % run.model.n_classes


def noise(run: ImageRun, n: int, seed: int = 0, device="cpu") -> torch.Tensor:
    """The same x0 for every method and NFE of a comparison."""
    return seeded_normal(run.model.dims, n, seed, device)
