"""Latent space: flows trained on codes z = E(x), decoded x = D(z) for display (the latent
recipe of Stable Diffusion / InstaFlow, article §4, at toy scale).

Two encoders: PCA (instant, linear, by SVD) and a small convolutional autoencoder the project
trains. Codes are standardised per dimension so that the flows' N(0, I) source matches their
scale. The flows are the 2-D pages' TimeMLP with ``dim`` = the code size, trained by the same
objectives (flowviz.methods).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..methods.fm import fm_objective
from ..methods.meanflow import MeanFlowConfig, MeanFlowObjective, MeanVelocity
from ..methods.shortcut import ShortcutConfig, ShortcutObjective
from ..models import MLPConfig, TimeMLP
from ..train import OptimConfig, TrainState, init_state
from .data import normal_sampler, tensor_sampler

ENCODERS = ("pca", "ae")
LATENT_METHODS = ("fm", "shortcut", "meanflow")


class PCA(nn.Module):
    """z = ((x - mean) V_k^T) / s, x = z s V_k + mean; s: each component's standard deviation."""

    def __init__(self, x: torch.Tensor, k: int):
        super().__init__()
        flat = x.flatten(1).double()
        mean = flat.mean(0)
        _, sv, vt = torch.linalg.svd(flat - mean, full_matrices=False)
        self.shape = tuple(x.shape[1:])
        self.register_buffer("mean", mean.float())
        self.register_buffer("v", vt[:k].float())
        self.register_buffer("s", (sv[:k] / (len(x) - 1) ** 0.5).float())
        self.explained = float((sv[:k] ** 2).sum() / (sv**2).sum())  # variance kept

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


@dataclass(frozen=True)
class LatentRun:
    encoder: str = "pca"  # an ENCODERS name
    k: int = 16  # code size
    ae_steps: int = 600
    method: str = "fm"  # a LATENT_METHODS name
    batch: int = 256
    model: MLPConfig = field(default_factory=lambda: MLPConfig(hidden=256, depth=3))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(steps=1500, lr=2e-3))
    shortcut: ShortcutConfig = field(default_factory=lambda: ShortcutConfig(target="stopgrad"))
    meanflow: MeanFlowConfig = field(default_factory=lambda: MeanFlowConfig(
        frac_neq=0.5, time_sampler="uniform", p=0.0))

    def __post_init__(self):
        if self.encoder not in ENCODERS or self.method not in LATENT_METHODS:
            raise ValueError(f"encoder in {ENCODERS}, method in {LATENT_METHODS}")


def fit_encoder(run: LatentRun, x: torch.Tensor):
    """(encoder with encode/decode, a number describing its fit: PCA's explained variance or
    the autoencoder's reconstruction MSE)."""
    if run.encoder == "pca":
        pca = PCA(x, run.k)
        return pca, pca.explained
    return train_autoencoder(x, run.k, run.ae_steps)


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
