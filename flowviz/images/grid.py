"""Image batches (N, C, H, W) in [-1, 1] -> one uint8 grid (rows x cols tiles) and PNG files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch


def to_grid(x: torch.Tensor, ncol: int | None = None, pad: int = 1, scale: int = 1) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (rows*(H+pad)+pad, ...) uint8, grey (2-D) or RGB (3-D);
    ``scale`` repeats pixels (nearest) so small digits stay crisp on a projector."""
    x = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    n, c, h, w = x.shape
    ncol = ncol or math.ceil(math.sqrt(n))
    nrow = math.ceil(n / ncol)
    out = torch.full((c, nrow * (h + pad) + pad, ncol * (w + pad) + pad), 255, dtype=torch.uint8)
    for i in range(n):
        r, k = divmod(i, ncol)
        out[:, pad + r * (h + pad):pad + r * (h + pad) + h,
            pad + k * (w + pad):pad + k * (w + pad) + w] = x[i]
    a = out.permute(1, 2, 0).numpy()
    if scale > 1:
        a = a.repeat(scale, 0).repeat(scale, 1)
    return a[..., 0] if c == 1 else a


def save_png(x: torch.Tensor, path: str | Path, ncol: int | None = None, scale: int = 2) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_grid(x, ncol, scale=scale)).save(path)
    return path
