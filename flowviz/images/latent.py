"""Latent space: flows trained on codes z = E(x), decoded x = D(z) for display (the latent
recipe of Stable Diffusion / InstaFlow, article §4, at toy scale).

Two encoders: PCA (instant, linear, by SVD) and a small convolutional autoencoder the project
trains. Codes are standardised per dimension so that the flows' N(0, I) source matches their
scale. The flows are the 2-D pages' TimeMLP with ``dim`` = the code size, trained by the same
objectives (flowviz.methods) and sampled by the image runs' ``generate``. A checkpoint
(flowviz.checkpoint, kind "latent") holds the encoder (an ``Encoder`` phase) and the flow, so
its samples decode after loading; ``python -m flowviz image latent`` trains one headless.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..config import JSONConfig
from ..device import describe
from ..methods.fm import fm_objective
from ..methods.meanflow import MeanFlowConfig, MeanFlowObjective, MeanVelocity
from ..methods.shortcut import ShortcutConfig, ShortcutObjective
from ..models import MLPConfig, TimeMLP
from ..train import OptimConfig, TrainState, init_state
from .data import digits, normal_sampler, seeded_normal, tensor_sampler
from .experiment import generate

ENCODERS = ("pca", "ae")
LATENT_METHODS = ("fm", "shortcut", "meanflow")


class PCA(nn.Module):
    """z = ((x - mean) V_k^T) / s, x = z s V_k + mean; s: each component's standard deviation.
    ``PCA(x, k)`` fits images x (N, C, H, W) by SVD; ``PCA((C, H, W), k)`` holds zeros to load
    a checkpoint into. ``explained``: the share of the variance the k components keep."""

    def __init__(self, x: torch.Tensor | tuple, k: int):
        super().__init__()
        self.shape = tuple(x.shape[1:]) if torch.is_tensor(x) else tuple(x)
        d = math.prod(self.shape)
        for name, size in (("mean", (d,)), ("v", (k, d)), ("s", (k,)), ("explained", ())):
            self.register_buffer(name, torch.zeros(size))
        if torch.is_tensor(x):
            flat = x.flatten(1).double()
            mean = flat.mean(0)
            _, sv, vt = torch.linalg.svd(flat - mean, full_matrices=False)
            self.mean.copy_(mean)
            self.v.copy_(vt[:k])
            self.s.copy_(sv[:k] / (len(x) - 1) ** 0.5)
            self.explained.copy_((sv[:k] ** 2).sum() / (sv**2).sum())

    def encode(self, x):
        return ((x.flatten(1) - self.mean) @ self.v.T) / self.s

    def decode(self, z):
        return ((z * self.s) @ self.v + self.mean).reshape(-1, *self.shape)


class ConvAE(nn.Module):
    """conv s2 (16) -> conv s2 (32) -> linear k | linear -> convT s2 (16) -> convT s2 -> tanh."""

    def __init__(self, channels: int = 1, size: int = 16, k: int = 16):
        super().__init__()
        self.shape, q = (channels, size, size), size // 4
        self.enc = nn.Sequential(nn.Conv2d(channels, 16, 3, 2, 1), nn.SiLU(),
                                 nn.Conv2d(16, 32, 3, 2, 1), nn.SiLU(), nn.Flatten(),
                                 nn.Linear(32 * q * q, k))
        self.dec = nn.Sequential(nn.Linear(k, 32 * q * q), nn.SiLU(),
                                 nn.Unflatten(1, (32, q, q)),
                                 nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.SiLU(),
                                 nn.ConvTranspose2d(16, channels, 4, 2, 1), nn.Tanh())
        self.register_buffer("mu", torch.zeros(k))
        self.register_buffer("sd", torch.ones(k))

    def encode(self, x):
        return (self.enc(x) - self.mu) / self.sd

    def decode(self, z):
        return self.dec(z * self.sd + self.mu)


def train_autoencoder(x: torch.Tensor, k: int = 16, steps: int = 600, batch: int = 128,
                      lr: float = 3e-3, seed: int = 0) -> tuple[ConvAE, float]:
    """Fit the autoencoder by MSE; then set the code statistics (standardised codes). Returns
    (autoencoder, final reconstruction MSE on all of x)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    ae = ConvAE(x.shape[1], x.shape[-1], k).to(x.device)
    opt = torch.optim.Adam(ae.parameters(), lr=lr)
    for _ in range(steps):
        xb = x[torch.randint(0, len(x), (batch,), generator=g).to(x.device)]
        loss = F.mse_loss(ae.dec(ae.enc(xb)), xb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        codes = ae.enc(x)
        ae.mu.copy_(codes.mean(0))
        ae.sd.copy_(codes.std(0).clamp_min(1e-6))
        mse = float(F.mse_loss(ae.decode(ae.encode(x)), x))
    return ae.eval(), mse


@dataclass
class Encoder:
    """A fitted encoder ``net`` (PCA or ConvAE) with the seconds fitting took and the machine
    it ran on (flowviz.device.describe): a latent checkpoint's first phase."""

    net: nn.Module
    seconds: float = 0.0
    machine: str = ""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.net.decode(z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """D(E(x)): what a perfect flow on the codes would give back."""
        return self.decode(self.encode(x))


@dataclass(frozen=True)
class LatentRun(JSONConfig):
    encoder: str = "pca"  # an ENCODERS name
    k: int = 16  # code size
    ae_steps: int = 600
    size: int = 16  # the digits' side (8 upsampled)
    method: str = "fm"  # a LATENT_METHODS name
    batch: int = 256
    # the flow's network; dim, n_scalars (and MeanFlow's emb_scale 20) are set by build_latent
    model: MLPConfig = field(default_factory=lambda: MLPConfig(hidden=256, depth=3))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(steps=1500, lr=2e-3))
    shortcut: ShortcutConfig = field(default_factory=lambda: ShortcutConfig(target="stopgrad"))
    meanflow: MeanFlowConfig = field(default_factory=lambda: MeanFlowConfig(
        frac_neq=0.5, time_sampler="uniform", p=0.0))
    BOUNDS: ClassVar[dict] = {"k": (1, 256), "ae_steps": (1, 100_000), "size": (4, 64),
                              "batch": (1, 8192)}  # what from_dict accepts

    def __post_init__(self):
        if self.encoder not in ENCODERS or self.method not in LATENT_METHODS:
            raise ValueError(f"encoder in {ENCODERS}, method in {LATENT_METHODS}")
        if not (1 <= self.k <= 256 and self.size % 4 == 0 and 4 <= self.size <= 64):
            raise ValueError("need 1 <= k <= 256 and a size in 4..64 divisible by 4")
        if self.encoder == "pca" and self.k > self.size**2:
            raise ValueError(f"PCA keeps at most size² = {self.size**2} components")


def encoder_settings(run: LatentRun) -> dict:
    """What the fitted encoder depends on: runs with equal settings can share one encoder."""
    d = {"encoder": run.encoder, "k": run.k, "size": run.size}
    return d if run.encoder == "pca" else {**d, "ae_steps": run.ae_steps, "seed": run.optim.seed}


def latent_images(run: LatentRun, device="cpu") -> torch.Tensor:
    """The digits (N, 1, size, size) in [-1, 1] that the encoder and the flow are fitted to."""
    return digits(run.size)[0].to(device)


def fit_encoder(run: LatentRun, x: torch.Tensor) -> tuple[Encoder, float]:
    """(the encoder fitted to x, a number describing its fit: PCA's explained variance or the
    autoencoder's reconstruction MSE)."""
    t0 = time.perf_counter()
    if run.encoder == "pca":
        net = PCA(x, run.k)
        fit = float(net.explained)
    else:
        net, fit = train_autoencoder(x, run.k, run.ae_steps, seed=run.optim.seed)
    return Encoder(net, time.perf_counter() - t0, describe(x.device)), fit


def empty_encoder(run: LatentRun, device="cpu") -> Encoder:
    """The run's encoder with zero / random weights, to load a checkpoint into."""
    net = PCA((1, run.size, run.size), run.k) if run.encoder == "pca" else \
        ConvAE(1, run.size, run.k)
    return Encoder(net.to(device).eval())


def reconstruction_mse(enc: Encoder, x: torch.Tensor) -> float:
    """Mean squared error of D(E(x)) against x (pixels in [-1, 1])."""
    return float(F.mse_loss(enc.reconstruct(x), x))


def build_latent(run: LatentRun, z: torch.Tensor) -> TrainState:
    """A flow on the codes z (N, k) with the run's method; the network is the 2-D pages'
    TimeMLP with dim = k (MeanFlow: its MeanVelocity)."""
    two = run.method in ("shortcut", "meanflow")
    cfg = dataclasses.replace(run.model, dim=run.k, n_scalars=2 if two else 1,
                              emb_scale=20.0 if run.method == "meanflow" else run.model.emb_scale)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.optim.seed)
        model = MeanVelocity(cfg) if run.method == "meanflow" else TimeMLP(cfg)
    x0, x1 = normal_sampler((run.k,)), tensor_sampler(z)
    objective = {"fm": lambda: fm_objective(x0, x1, run.batch),
                 "shortcut": lambda: ShortcutObjective(x0, x1, run.batch, run.shortcut),
                 "meanflow": lambda: MeanFlowObjective(x0, x1, run.batch, run.meanflow),
                 }[run.method]()
    return init_state(model.to(z.device), objective, run.optim)


def flow_on_codes(run: LatentRun, enc: Encoder, device="cpu") -> TrainState:
    """A fresh flow for ``run`` on ``enc``'s codes of the run's digits."""
    with torch.no_grad():
        return build_latent(run, enc.encode(latent_images(run, device)))


def latent_noise(run: LatentRun, n: int, seed: int = 0, device="cpu") -> torch.Tensor:
    """The same z0 (n, k) for every method and NFE of a comparison."""
    return seeded_normal((run.k,), n, seed, device)


@torch.no_grad()
def decoded(run: LatentRun, enc: Encoder, flow: nn.Module, z0: torch.Tensor,
            nfe: int) -> torch.Tensor:
    """Images D(z1) of the codes z1 that the flow reaches from z0 with exactly ``nfe`` network
    calls (flowviz.images.experiment.generate: Euler, shortcut steps or MeanFlow jumps)."""
    return enc.decode(generate(run, flow, z0, nfe))
