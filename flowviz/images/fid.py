"""Standard FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a
Local Nash Equilibrium") through torch-fidelity's Inception-v3 port of the TensorFlow FID
(https://torch-fidelity.readthedocs.io). Comparable with published FIDs only at their sample
counts (e.g. 50 000 CIFAR-10 samples vs the training set).

Nothing is downloaded unless ``download=True``: the Inception weights are read from, in order,
the ``weights`` argument, ``$FLOWVIZ_INCEPTION_WEIGHTS``, or torch-fidelity's own download
cache, ``<torch hub dir>/checkpoints/weights-inception-2015-12-05-6726825d.pth``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

WEIGHTS_ENV = "FLOWVIZ_INCEPTION_WEIGHTS"
INSTALL = ("Install it with `pip install -r requirements-fid.txt`: torchvision 0.28.0 is the one "
           "for torch 2.13.0 (beside a CPU torch, its +cpu build from "
           "https://download.pytorch.org/whl/cpu); with another torch, install the torchvision "
           "of that torch, then `pip install torch-fidelity==0.4.0`")


def weights_path(weights: str | Path | None = None) -> tuple[Path, str]:
    """(where the Inception weights are looked for, where that path came from). The argument
    wins over the environment variable, which wins over torch-fidelity's cache file (needs
    torch-fidelity installed)."""
    if weights is not None:
        return Path(weights).expanduser(), "the weights argument"
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV]).expanduser(), f"${WEIGHTS_ENV}"
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    # torch.hub.load_state_dict_from_url (which torch-fidelity calls) caches here
    cache = Path(torch.hub.get_dir()) / "checkpoints" / URL_INCEPTION_V3.rsplit("/", 1)[1]
    return cache, "torch-fidelity's download cache"


def fid_available(weights: str | Path | None = None, download: bool = False) -> tuple[bool, str]:
    """(ok, reason in words). ``download=True``: a missing default cache file is fine, since
    torch-fidelity will download it (needs internet)."""
    try:
        import torch_fidelity  # noqa: F401  (imports torchvision, which raises RuntimeError
        # "operator torchvision::nms does not exist" when its build does not fit torch's)
    except (ImportError, RuntimeError) as e:
        return False, f"Standard FID needs torch-fidelity, which does not import ({e}). {INSTALL}."
    path, source = weights_path(weights)
    if path.is_file():
        return True, f"torch-fidelity with the Inception weights at {path} (from {source})"
    if download and weights is None and not os.environ.get(WEIGHTS_ENV):
        return True, f"torch-fidelity; the Inception weights will be downloaded to {path}"
    return False, (f"Standard FID needs the Inception weights, not found at {path} (from "
                   f"{source}). Put torch-fidelity's file {path.name} there, or set "
                   f"{WEIGHTS_ENV} to its path.")


class _Images(torch.utils.data.Dataset):
    """What torch-fidelity reads: one uint8 (3, H, W) tensor per item."""

    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def to_uint8_rgb(x: torch.Tensor) -> torch.Tensor:
    """(N, 1 or 3, H, W) in [-1, 1] -> (N, 3, H, W) uint8 on the CPU; grey digits are repeated
    over the 3 channels. torch-fidelity resizes to 299 x 299 itself (TF1-compatible bilinear)."""
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected images (N, 1 or 3, H, W), got {tuple(x.shape)}")
    x = ((x.detach().float().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return x.expand(-1, 3, -1, -1).contiguous()


def standard_fid(samples: torch.Tensor, reference: torch.Tensor,
                 weights: str | Path | None = None, device: str | torch.device | None = None,
                 batch_size: int = 64, download: bool = False) -> float:
    """FID between two image sets (N, C, H, W) in [-1, 1], C = 1 or 3, on the 2048-d pool
    features of torch-fidelity's Inception-v3. ``device``: "cuda" or "cpu" (default: CUDA when
    available). Raises RuntimeError with ``fid_available``'s reason when it cannot run."""
    ok, reason = fid_available(weights, download)
    if not ok:
        raise RuntimeError(reason)
    if min(len(samples), len(reference)) < 2:
        raise ValueError("FID needs at least 2 images per set (a covariance)")
    import torch_fidelity

    path = weights_path(weights)[0]
    cuda = torch.cuda.is_available() if device is None else torch.device(device).type == "cuda"
    m = torch_fidelity.calculate_metrics(
        input1=_Images(to_uint8_rgb(samples)), input2=_Images(to_uint8_rgb(reference)),
        fid=True, feature_extractor="inception-v3-compat",
        feature_extractor_weights_path=str(path) if path.is_file() else None,
        cuda=cuda, batch_size=batch_size, cache=False, verbose=False,
        save_cpu_ram=True)  # DataLoader without workers: the images are already in memory
    return float(m[torch_fidelity.KEY_METRIC_FID])
