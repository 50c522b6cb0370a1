"""Device choice: CUDA, then Apple MPS, then CPU, unless the user names one."""

from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda", "mps")


def available_devices() -> list[str]:
    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        out.append("mps")
    return out


def pick_device(pref: str = "auto") -> torch.device:
    """``auto`` takes the fastest available; an unavailable explicit choice raises ValueError."""
    avail = available_devices()
    if pref == "auto":
        return torch.device("cuda" if "cuda" in avail else "mps" if "mps" in avail else "cpu")
    if pref not in avail:
        raise ValueError(f"device {pref!r} is not available here (available: {', '.join(avail)})")
    return torch.device(pref)
