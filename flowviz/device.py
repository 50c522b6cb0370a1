"""Device choice: CUDA, then Apple MPS, then CPU, unless the user names one."""

from __future__ import annotations

import platform
from pathlib import Path

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


def describe(device: torch.device | str = "cpu") -> str:
    """The processor a timing ran on, e.g. "Intel Xeon ..., 2 torch threads" or the GPU's name:
    stored next to timings that are kept on disk and shown elsewhere (flowviz.store)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    info = Path("/proc/cpuinfo")
    cpu = next((ln.split(":", 1)[1].strip() for ln in info.read_text().splitlines()
                if ln.startswith("model name")), None) if info.exists() else None
    return (f"{cpu or platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} torch threads")
