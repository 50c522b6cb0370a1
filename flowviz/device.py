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


class cuda_graphed:
    """``fn(*args)`` replayed as a CUDA graph, one graph per shape of its tensor arguments (other
    arguments are part of the key: modules by identity, the rest by value). For no-grad work of
    fixed shapes whose cost is launching many small kernels, such as MeanFlow's JVP target (~700
    launches eagerly; flowviz.images.experiment.build_image). Weights that fn reads must change
    in place (the optimizer, the EMA and load_state_dict do). Captured eagerly, also through a
    torch.compile'd module (stance "force_eager"). The returned tensors are the graph's own
    buffers: valid until the next call."""

    def __init__(self, fn, warmup: int = 2):
        self.fn, self.warmup, self.graphs = fn, warmup, {}

    @staticmethod
    def _key(a):
        if torch.is_tensor(a):
            return ("tensor", tuple(a.shape), a.dtype, a.device)
        return ("id", id(a)) if isinstance(a, torch.nn.Module) else a

    def __call__(self, *args):
        key = tuple(self._key(a) for a in args)
        if key not in self.graphs:
            self.graphs[key] = self._capture(args)
        graph, inputs, out = self.graphs[key]
        for buf, a in zip(inputs, args, strict=True):
            if torch.is_tensor(a):
                buf.copy_(a)
        graph.replay()
        return out

    def _capture(self, args):
        inputs = [a.clone() if torch.is_tensor(a) else a for a in args]
        with torch.compiler.set_stance("force_eager"):
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up off the capture (lazy inits, autotuning)
                for _ in range(self.warmup):
                    self.fn(*inputs)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = self.fn(*inputs)
        return graph, inputs, out
