"""Offline image quality: a small classifier the project trains on the same data, and the
Fréchet distance between Gaussian fits of its penultimate features (the FID recipe of Heusel et
al. 2017 with this classifier in place of Inception). It is labelled "classifier-feature
Fréchet distance" everywhere and is NOT comparable with published FIDs; standard FID needs
torch-fidelity and Inception weights already on disk (flowviz.images.fid).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..config import from_dict

METRIC = "classifier-feature Fréchet distance"


@dataclass(frozen=True)
class ClassifierConfig:
    channels: int = 1
    size: int = 16
    width: int = 32
    n_classes: int = 10
    steps: int = 1500
    batch: int = 256
    lr: float = 2e-3
    n_test: int = 297  # the last n_test images are held out (digits: 1500 train / 297 test)
    seed: int = 0
    augment: str = "shift"  # "shift": one random translation per batch; "affine": per image,
    # a random translation, rotation (±rotate degrees) and scale (1 ± scale)
    rotate: float = 12.0
    scale: float = 0.1
    weight_decay: float = 0.0
    BOUNDS: ClassVar[dict] = {"channels": (1, 4), "size": (4, 128), "width": (1, 512),
                              "n_classes": (1, 1000), "steps": (1, 1_000_000),
                              "batch": (1, 65_536), "lr": (1e-8, 1.0), "n_test": (1, 100_000),
                              "seed": (0, 2**31 - 1), "rotate": (0.0, 180.0),
                              "scale": (0.0, 0.9), "weight_decay": (0.0, 1.0)}


class Classifier(nn.Module):
    """conv 3x3 (w) -> conv stride 2 (w) -> conv stride 2 (2w) -> mean pool -> 2w features ->
    logits. ``features`` are what the Fréchet distance compares."""

    def __init__(self, cfg: ClassifierConfig = ClassifierConfig()):
        super().__init__()
        self.cfg, w = cfg, cfg.width
        self.body = nn.Sequential(
            nn.Conv2d(cfg.channels, w, 3, padding=1), nn.SiLU(),
            nn.Conv2d(w, w, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.SiLU())
        self.head = nn.Linear(2 * w, cfg.n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _shift(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random translations by up to 1/8 of the side (background is -1): generated digits are
    rarely centred exactly like the data."""
    m = max(1, x.shape[-1] // 8)
    dx, dy = (int(v) for v in torch.randint(-m, m + 1, (2,), generator=g))
    return torch.roll(F.pad(x, (m, m, m, m), value=-1.0), (dy, dx), (2, 3))[..., m:-m, m:-m]


def _affine(x: torch.Tensor, g: torch.Generator, cfg: ClassifierConfig) -> torch.Tensor:
    """Per image: a random rotation (±cfg.rotate degrees), scale (1 ± cfg.scale) and
    translation (±1/8 of the side), background -1: the variations of handwriting that a
    generated digit may show without being a worse digit."""
    n = x.shape[0]
    u = torch.rand(n, 4, generator=g) * 2 - 1
    ang = u[:, 0] * cfg.rotate * torch.pi / 180
    sc = 1 + u[:, 1] * cfg.scale
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, u[:, 2] / 4], 1),
                         torch.stack([sin, cos, u[:, 3] / 4], 1)], 1).to(x.device, x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


def train_classifier(x: torch.Tensor, y: torch.Tensor, cfg: ClassifierConfig = ClassifierConfig(),
                     device="cpu") -> tuple[Classifier, float]:
    """Train on all but the last ``n_test`` images; returns (model, held-out accuracy)."""
    g = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = Classifier(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay) \
        if cfg.weight_decay else torch.optim.Adam(model.parameters(), lr=cfg.lr)
    aug = (lambda xb: _affine(xb, g, cfg)) if cfg.augment == "affine" else \
        (lambda xb: _shift(xb, g))
    xtr, ytr = x[:-cfg.n_test].to(device), y[:-cfg.n_test].to(device)
    for step in range(cfg.steps):
        for gr in opt.param_groups:
            gr["lr"] = cfg.lr * 0.5 * (1 + torch.cos(torch.tensor(step / cfg.steps * 3.14159)))
        idx = torch.randint(0, len(xtr), (cfg.batch,), generator=g).to(device)
        loss = F.cross_entropy(model(aug(xtr[idx])), ytr[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x[-cfg.n_test:].to(device)).argmax(1).cpu() == y[-cfg.n_test:]).float()
    return model, float(acc.mean())


def save_classifier(path: str | Path, model: Classifier, accuracy: float) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": "flowviz-classifier/1", "config": dataclasses.asdict(model.cfg),
                "accuracy": accuracy, "model": model.state_dict()}, path)
    return path


def load_classifier(path: str | Path, device="cpu") -> tuple[Classifier, float]:
    """(classifier, held-out accuracy); weights_only loading: nothing is unpickled as code,
    and the archive is inspected first as a checkpoint is (flowviz.checkpoint.inspect)."""
    from ..checkpoint import inspect

    inspect(path)
    ck = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ck, dict) or ck.get("format") != "flowviz-classifier/1":
        raise ValueError(f"{path} is not a flowviz classifier")
    model = Classifier(from_dict(ClassifierConfig, ck["config"]))
    model.load_state_dict(ck["model"])
    return model.to(device).eval(), float(ck["accuracy"])


@torch.no_grad()
def features_and_probs(model: Classifier, x: torch.Tensor, chunk: int = 1024):
    dev = next(model.parameters()).device
    fs, ps = [], []
    for i in range(0, len(x), chunk):
        f = model.features(x[i:i + chunk].to(dev).float())
        fs.append(f.double().cpu())
        ps.append(model.head(f).softmax(1).double().cpu())
    return torch.cat(fs), torch.cat(ps)


def _sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh((a + a.T) / 2)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def frechet_distance(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2) between Gaussian fits of two
    feature sets (N, D), in float64 (the symmetric form of tr((S1 S2)^1/2))."""
    f1, f2 = f1.double(), f2.double()
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = torch.cov(f1.T), torch.cov(f2.T)
    r = _sqrtm_psd(s1)
    cross = _sqrtm_psd(r @ s2 @ r)
    return float((mu1 - mu2).pow(2).sum() + torch.trace(s1) + torch.trace(s2)
                 - 2 * torch.trace(cross))


def quality(model: Classifier, x: torch.Tensor, ref_features: torch.Tensor,
            confident: float = 0.9) -> dict:
    """Samples x judged by the classifier: ``fd`` (Fréchet distance to the reference
    features), ``confident`` (fraction whose top class has probability >= ``confident``),
    ``classes`` (count of samples per top class, confident ones only) and ``n_classes``."""
    f, p = features_and_probs(model, x)
    top, label = p.max(1)
    sure = top >= confident
    counts = torch.bincount(label[sure], minlength=p.shape[1])
    return {"fd": frechet_distance(f, ref_features), "confident": float(sure.double().mean()),
            "classes": counts.tolist(), "n_classes": int((counts > 0).sum())}


def label_agreement(model: Classifier, x: torch.Tensor, labels: torch.Tensor,
                    confident: float = 0.9) -> dict:
    """Class-conditional samples x judged against the labels they were conditioned on:
    ``agree`` (fraction whose top class is their label) and ``agree_confident`` (top class is
    their label with probability >= ``confident``)."""
    p = features_and_probs(model, x)[1]
    top, pred = p.max(1)
    hit = pred == labels.cpu()
    return {"agree": float(hit.double().mean()),
            "agree_confident": float((hit & (top >= confident)).double().mean())}

