"""Time-conditioned MLP: v(x, t), s(x, t, d), u(x, t, r), or v(x, t | label).

Each scalar condition (t, and optionally d, r - t, ...) gets its own sinusoidal embedding; an
optional class label gets a learned embedding (index ``n_classes`` is the "no label" token used
by classifier-free guidance). Inputs of any shape (B, *dims) are flattened and restored.
``TimeMLP.jvp`` is its forward-mode pass: the tangent carried through each layer beside the value
(MeanFlow's target, flowviz.methods.meanflow, at about the cost of two forward passes).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
from torch import nn


def _freqs(dim: int, max_period: float, device) -> torch.Tensor:
    """(1, dim // 2) angular frequencies per unit of scale, from 1 down to 1 / max_period."""
    half = dim // 2
    return torch.exp(-math.log(max_period) * torch.arange(half, device=device) / half)[None]


def sinusoidal(s: torch.Tensor, dim: int, max_period: float = 1e4,
               scale: float = 1000.0) -> torch.Tensor:
    """Transformer-style features of a scalar in [0, 1]: (B,) -> (B, dim); angular frequencies
    from ``scale`` down to scale / max_period. Computed in at least float32 (float64 stays)."""
    s = s.to(torch.promote_types(s.dtype, torch.float32))
    ang = scale * s[:, None] * _freqs(dim, max_period, s.device)  # [0, 1] spans many periods
    return torch.cat([ang.sin(), ang.cos()], dim=1)


def sinusoidal_jvp(s: torch.Tensor, ds: torch.Tensor, dim: int, max_period: float = 1e4,
                   scale: float = 1000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`sinusoidal` and its derivative along ds (B,): d sin(a) = cos(a) da and
    d cos(a) = -sin(a) da, with da = scale ds freqs."""
    freqs = _freqs(dim, max_period, s.device)
    dt = torch.promote_types(s.dtype, torch.float32)
    ang = scale * s.to(dt)[:, None] * freqs
    dang = scale * ds.to(dt)[:, None] * freqs
    sin, cos = ang.sin(), ang.cos()
    return torch.cat([sin, cos], dim=1), torch.cat([cos * dang, -sin * dang], dim=1)


def _layer_jvp(layer: nn.Module, h: torch.Tensor, dh: torch.Tensor):
    """One Linear or SiLU layer on the value h and its tangent dh: a Linear maps the tangent
    without its bias, SiLU multiplies it by silu'(h) = sigmoid(h) (1 + h (1 - sigmoid(h)))."""
    if isinstance(layer, nn.Linear):
        return layer(h), nn.functional.linear(dh, layer.weight)
    if isinstance(layer, nn.SiLU):
        sg = torch.sigmoid(h)
        return nn.functional.silu(h), dh * (sg * (1 + h * (1 - sg)))
    raise TypeError(f"no forward-mode rule for {type(layer).__name__}")


@dataclass(frozen=True)
class MLPConfig:
    dim: int = 2  # flattened data dimension
    hidden: int = 256
    depth: int = 3  # hidden layers
    n_scalars: int = 1  # number of scalar conditions (t first)
    emb: int = 64  # sinusoidal features per scalar
    n_classes: int = 0  # 0: unconditional
    # highest angular frequency of the embedding; MeanFlow differentiates u in t (a JVP), and
    # 1000 makes du/dt huge at init, so it uses a smaller one (flowviz.methods.meanflow)
    emb_scale: float = 1000.0
    # what from_dict accepts (flowviz.config): at most ~25M parameters
    BOUNDS: ClassVar[dict] = {"dim": (1, 4096), "hidden": (1, 2048), "depth": (1, 16),
                              "n_scalars": (1, 4), "emb": (2, 1024), "n_classes": (0, 1000),
                              "emb_scale": (1e-3, 1e5)}


class TimeMLP(nn.Module):
    def __init__(self, cfg: MLPConfig = MLPConfig()):
        super().__init__()
        self.cfg = cfg
        cond = cfg.n_scalars * cfg.emb
        self.label = nn.Embedding(cfg.n_classes + 1, cond) if cfg.n_classes else None
        self.cond = nn.Sequential(nn.Linear(cond, cfg.hidden), nn.SiLU())
        layers, width = [], cfg.dim + cfg.hidden
        for _ in range(cfg.depth):
            layers += [nn.Linear(width, cfg.hidden), nn.SiLU()]
            width = cfg.hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, cfg.dim))

    def forward(self, x: torch.Tensor, *scalars: torch.Tensor, label=None) -> torch.Tensor:
        if len(scalars) != self.cfg.n_scalars:
            raise ValueError(f"expected {self.cfg.n_scalars} scalar conditions, got {len(scalars)}")
        b = x.shape[0]
        s = [torch.as_tensor(c, dtype=x.dtype, device=x.device).expand(b) for c in scalars]
        e = torch.cat([sinusoidal(c, self.cfg.emb, scale=self.cfg.emb_scale) for c in s],
                      dim=1).to(x.dtype)
        if self.label is not None:
            lab = torch.full((b,), self.cfg.n_classes, device=x.device) if label is None else label
            e = e + self.label(lab)
        h = torch.cat([x.flatten(1), self.cond(e)], dim=1)
        return self.net(h).reshape(x.shape)

    def jvp(self, x: torch.Tensor, scalars, dx: torch.Tensor, dscalars,
            label=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(forward(x, *scalars), its directional derivative along (dx, *dscalars)), the
        tangent carried through each layer beside the value: what torch.func.jvp computes, in
        plain tensor ops (no tracing; about two forward passes). The label is held fixed."""
        if len(scalars) != self.cfg.n_scalars or len(dscalars) != len(scalars):
            raise ValueError(f"expected {self.cfg.n_scalars} scalar conditions and tangents")
        b = x.shape[0]

        def rows(c):
            return torch.as_tensor(c, dtype=x.dtype, device=x.device).expand(b)

        parts = [sinusoidal_jvp(rows(c), rows(dc), self.cfg.emb, scale=self.cfg.emb_scale)
                 for c, dc in zip(scalars, dscalars, strict=True)]
        e = torch.cat([p[0] for p in parts], dim=1).to(x.dtype)
        de = torch.cat([p[1] for p in parts], dim=1).to(x.dtype)
        if self.label is not None:
            lab = torch.full((b,), self.cfg.n_classes, device=x.device) if label is None else label
            e = e + self.label(lab)
        for layer in self.cond:
            e, de = _layer_jvp(layer, e, de)
        h, dh = torch.cat([x.flatten(1), e], dim=1), torch.cat([dx.flatten(1), de], dim=1)
        for layer in self.net:
            h, dh = _layer_jvp(layer, h, dh)
        return h.reshape(x.shape), dh.reshape(x.shape)

    def config_dict(self) -> dict:
        return asdict(self.cfg)
