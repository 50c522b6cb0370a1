"""A small U-Net with the TimeMLP's call signature: ``model(x, *scalars, label=None)``.

So every objective in flowviz.methods trains it unchanged on images (B, C, H, W): v(x, t) for FM
and ReFlow, s(x, t, d) for Shortcut, u(x, t, r) = net(x, t, r - t) for MeanFlow. Each scalar
condition gets the same sinusoidal features as the MLP (flowviz.models.mlp.sinusoidal); an
optional class label adds a learned embedding whose index ``n_classes`` is the "no label" token
of classifier-free guidance. Residual blocks take the condition as a per-channel scale and shift
(Dhariwal & Nichol 2021, "AdaGN"); self-attention at the resolutions named in ``attn``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .mlp import sinusoidal


@dataclass(frozen=True)
class UNetConfig:
    channels: int = 1  # image channels
    size: int = 16  # image side (a multiple of 2 ** (len(mults) - 1))
    base: int = 32  # channels at the first level
    mults: tuple[int, ...] = (1, 2)  # channel multiplier per level; each level halves the side
    blocks: int = 1  # residual blocks per level
    attn: tuple[int, ...] = ()  # sides at which self-attention runs (e.g. (16,))
    head_dim: int = 64
    n_scalars: int = 1  # scalar conditions (t first)
    emb: int = 64  # sinusoidal features per scalar
    n_classes: int = 0  # 0: unconditional
    emb_scale: float = 1000.0  # as MLPConfig.emb_scale (MeanFlow uses a smaller one)
    dropout: float = 0.0
    groups: int = 8  # GroupNorm groups
    cemb_mult: int = 4  # condition embedding width = cemb_mult * base
    # what from_dict accepts (flowviz.config): CIFAR_UNET fits, ~10x its size does not
    BOUNDS: ClassVar[dict] = {"channels": (1, 4), "size": (4, 128), "base": (1, 256),
                              "mults": (1, 8), "blocks": (1, 4), "attn": (1, 128),
                              "head_dim": (1, 1024), "n_scalars": (1, 4), "emb": (2, 1024),
                              "n_classes": (0, 1000), "emb_scale": (1e-3, 1e5),
                              "dropout": (0.0, 0.99), "groups": (1, 256), "cemb_mult": (1, 8)}

    def __post_init__(self):
        object.__setattr__(self, "mults", tuple(int(m) for m in self.mults))
        object.__setattr__(self, "attn", tuple(int(a) for a in self.attn))
        if self.size % 2 ** (len(self.mults) - 1):
            raise ValueError(f"size {self.size} is not divisible by 2^{len(self.mults) - 1}")

    @property
    def dims(self) -> tuple[int, int, int]:
        return (self.channels, self.size, self.size)


# The CPU default: 1x16x16 digits, 0.18M parameters, ~0.17 s per batch-128 step on 2 cores.
DIGITS_UNET = UNetConfig(base=16)
# The GPU benchmark's CIFAR-10 network (~35M parameters, the size of torchcfm's CIFAR U-Net).
CIFAR_UNET = UNetConfig(channels=3, size=32, base=128, mults=(1, 2, 2, 2), blocks=2, attn=(16,),
                        dropout=0.1, groups=32, cemb_mult=2)


class Conv2d(nn.Conv2d):
    """A convolution that computes in ``compute_dtype`` (None: the input's) from fp32 weights:
    mixed precision as plain differentiable casts, which forward-mode AD (MeanFlow's JVP)
    supports, where torch.autocast does not."""

    compute_dtype: torch.dtype | None = None

    def forward(self, x):
        dt = self.compute_dtype
        if dt is None:
            return super().forward(x)
        return self._conv_forward(x.to(dt), self.weight.to(dt), self.bias.to(dt))


class Linear(nn.Linear):
    compute_dtype: torch.dtype | None = None

    def forward(self, x):
        dt = self.compute_dtype
        if dt is None:
            return super().forward(x)
        return F.linear(x.to(dt), self.weight.to(dt), self.bias.to(dt))


def _under_jvp(x: torch.Tensor) -> bool:
    """Whether x is a torch.func transform's tensor (MeanFlow's JVP), outside torch.compile."""
    return not torch.compiler.is_compiling() and \
        torch._C._functorch.is_functorch_wrapped_tensor(x)


class GroupNorm(nn.GroupNorm):
    """GroupNorm computed in fp32, returned in the input's dtype. Under forward-mode AD
    (MeanFlow's JVP) on a contiguous copy, which its formula needs; elsewhere in the input's
    memory format (a channels_last network keeps its layout: no transpose per norm)."""

    def forward(self, x):
        x32 = x.to(torch.promote_types(x.dtype, self.weight.dtype))
        if _under_jvp(x):
            x32 = x32.contiguous()
        y = F.group_norm(x32, self.num_groups, self.weight, self.bias, self.eps)
        return y.to(x.dtype)


def set_precision(model: nn.Module, dtype: torch.dtype | None) -> nn.Module:
    """Compute convolutions and linear layers in ``dtype`` (e.g. torch.bfloat16; None: fp32);
    weights, gradients and the optimizer stay fp32."""
    for m in model.modules():
        if isinstance(m, Conv2d | Linear):
            m.compute_dtype = dtype
    return model


def _norm(c: int, groups: int) -> GroupNorm:
    return GroupNorm(min(groups, c), c)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, cemb: int, groups: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = _norm(cin, groups), Conv2d(cin, cout, 3, padding=1)
        self.emb = Linear(cemb, 2 * cout)
        self.norm2, self.conv2 = _norm(cout, groups), Conv2d(cout, cout, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.skip = Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x, e):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(e)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(self.drop(F.silu(h)))


class Attention(nn.Module):
    def __init__(self, c: int, head_dim: int, groups: int):
        super().__init__()
        self.heads = max(1, c // head_dim)
        self.norm, self.qkv = _norm(c, groups), Conv2d(c, 3 * c, 1)
        self.out = Conv2d(c, c, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x):
        b, c, hh, ww = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, hh * ww) \
            .transpose(-1, -2).unbind(1)  # each (B, heads, HW, c / heads)
        if _under_jvp(q):
            # under torch.func.jvp (MeanFlow): the explicit formula, which forward AD supports
            a = (q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5).softmax(-1) @ v
        else:
            a = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(a.transpose(-1, -2).reshape(b, c, hh, ww))


class TimeUNet(nn.Module):
    def __init__(self, cfg: UNetConfig = DIGITS_UNET):
        super().__init__()
        self.cfg = cfg
        cemb = cfg.cemb_mult * cfg.base
        self.cond = nn.Sequential(Linear(cfg.n_scalars * cfg.emb, cemb), nn.SiLU(),
                                  Linear(cemb, cemb))
        self.label = nn.Embedding(cfg.n_classes + 1, cemb) if cfg.n_classes else None
        self.inp = Conv2d(cfg.channels, cfg.base, 3, padding=1)
        chans, skips, side = [cfg.base * m for m in cfg.mults], [cfg.base], cfg.size
        self.down, c = nn.ModuleList(), cfg.base
        for i, co in enumerate(chans):
            for _ in range(cfg.blocks):
                self.down.append(self._level(c, co, side))
                c = co
                skips.append(c)
            if i < len(chans) - 1:
                self.down.append(Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
                side //= 2
        self.mid = nn.ModuleList([ResBlock(c, c, cemb, cfg.groups, cfg.dropout),
                                  Attention(c, cfg.head_dim, cfg.groups),
                                  ResBlock(c, c, cemb, cfg.groups, cfg.dropout)])
        self.up = nn.ModuleList()
        for i, co in reversed(list(enumerate(chans))):
            for _ in range(cfg.blocks + 1):
                self.up.append(self._level(c + skips.pop(), co, side))
                c = co
            if i > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                             Conv2d(c, c, 3, padding=1)))
                side *= 2
        self.out = nn.Sequential(_norm(c, cfg.groups), nn.SiLU(),
                                 Conv2d(c, cfg.channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def _level(self, cin: int, cout: int, side: int) -> nn.ModuleList:
        cfg = self.cfg
        parts = [ResBlock(cin, cout, cfg.cemb_mult * cfg.base, cfg.groups, cfg.dropout)]
        if side in cfg.attn:
            parts.append(Attention(cout, cfg.head_dim, cfg.groups))
        return nn.ModuleList(parts)

    @staticmethod
    def _run(layer, h, e):
        if isinstance(layer, nn.ModuleList):  # a level: ResBlock (+ Attention)
            h = layer[0](h, e)
            return layer[1](h) if len(layer) > 1 else h
        return layer(h)  # down- or up-sampling

    def forward(self, x: torch.Tensor, *scalars: torch.Tensor, label=None) -> torch.Tensor:
        cfg = self.cfg
        if len(scalars) != cfg.n_scalars:
            raise ValueError(f"expected {cfg.n_scalars} scalar conditions, got {len(scalars)}")
        b = x.shape[0]
        s = [torch.as_tensor(c, dtype=x.dtype, device=x.device).expand(b) for c in scalars]
        e = torch.cat([sinusoidal(c, cfg.emb, scale=cfg.emb_scale) for c in s], 1).to(x.dtype)
        e = self.cond(e)
        if self.label is not None:
            lab = torch.full((b,), cfg.n_classes, device=x.device) if label is None else label
            e = e + self.label(lab)
        e = F.silu(e)
        h = self.inp(x)
        hs = [h]
        for layer in self.down:
            h = self._run(layer, h, e)
            hs.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, e)), e)
        for layer in self.up:
            if isinstance(layer, nn.ModuleList):
                h = torch.cat([h, hs.pop()], dim=1)
            h = self._run(layer, h, e)
        return self.out(h).to(x.dtype)

    def config_dict(self) -> dict:
        return asdict(self.cfg)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
