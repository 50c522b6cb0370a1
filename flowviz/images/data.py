"""Image data sets as tensors (N, C, H, W) in [-1, 1] with integer labels (N,).

- scikit-learn's handwritten digits (1797 images of 8x8, shipped with the package: offline),
  at 8x8 or upsampled (bilinear) to a side the U-Net likes;
- CIFAR-10 from a local folder in the official python format (``cifar-10-batches-py/``:
  data_batch_1..5, test_batch). Those files are pickles; they are read with an Unpickler that
  only rebuilds plain dicts, lists, strings, bytes and numpy arrays, so no code in a file runs;
- an explicit, opt-in download of the official archive, MD5-checked (never called by tests).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

DATASETS = ("digits", "cifar10")
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR_DIR = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = "test_batch"
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck")


class ImageDataError(ValueError):
    """A folder or file that does not hold the expected data; the message is for the user."""


def digits(size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits as (1797, 1, size, size) in [-1, 1] (ink is +1) and labels."""
    a = _digits_table()
    x = torch.as_tensor(a[:, :64], dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0 * 2 - 1
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.clamp(-1, 1), torch.as_tensor(a[:, 64], dtype=torch.long)


@functools.cache
def _digits_table() -> np.ndarray:
    """The (1797, 65) table (64 pixels in 0..16, then the label) that scikit-learn ships, read
    directly: importing scikit-learn itself takes seconds on a busy laptop."""
    spec = importlib.util.find_spec("sklearn")
    f = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz" \
        if spec else None
    if f is not None and f.is_file():
        return np.loadtxt(f, delimiter=",")
    from sklearn.datasets import load_digits  # a layout this code does not know

    d = load_digits()
    return np.concatenate([d.data, d.target[:, None]], axis=1)


# --- CIFAR-10, official python format ------------------------------------------------------------

_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("_codecs", "encode")}  # protocol-2 pickles from Python 3 spell bytes through it


class _ArraysOnly(pickle.Unpickler):
    """Rebuilds builtin containers and numpy arrays; refuses every other global (no code runs)."""

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: only arrays are allowed")


def _read_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        d = _ArraysOnly(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # noqa: BLE001 - any failure to read becomes a user message
        raise ImageDataError(f"{name} is not a CIFAR-10 python batch ({type(e).__name__}: "
                             f"{str(e)[:120]})") from None
    if not isinstance(d, dict):
        raise ImageDataError(f"{name} is not a CIFAR-10 python batch (not a dict)")
    d = {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}
    x, y = d.get("data"), d.get("labels")
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != 3072 or y is None:
        raise ImageDataError(f"{name} has no 'data' array of N x 3072 bytes with 'labels'")
    y = np.asarray(y, dtype=np.int64)
    if len(y) != len(x) or (len(y) and (y.min() < 0 or y.max() > 9)):
        raise ImageDataError(f"{name}: {len(y)} labels in 0..9 expected for {len(x)} images")
    return x, y


def find_cifar(root: str | Path) -> Path:
    """The ``cifar-10-batches-py`` folder at or under ``root`` (clear error when absent)."""
    root = Path(root).expanduser()
    for p in (root, root / CIFAR_DIR):
        if (p / CIFAR_TEST).is_file() or (p / CIFAR_TRAIN[0]).is_file():
            return p
    raise ImageDataError(f"No CIFAR-10 python batches in {root}: expected {CIFAR_DIR}/ with "
                         f"data_batch_1..5 and test_batch (the official cifar-10-python.tar.gz "
                         "unpacked), or opt in to flowviz.images.data.download_cifar.")


def load_cifar(root: str | Path, train: bool = True, limit: int = 0):
    """CIFAR-10 from the official python batches: (N, 3, 32, 32) in [-1, 1] and labels (N,).
    ``limit`` > 0 keeps the first ``limit`` images. Missing batches are an error."""
    folder = find_cifar(root)
    names = CIFAR_TRAIN if train else (CIFAR_TEST,)
    xs, ys = [], []
    for name in names:
        f = folder / name
        if not f.is_file():
            raise ImageDataError(f"{folder} lacks {name}: the CIFAR-10 folder is incomplete")
        x, y = _read_batch(f.read_bytes(), name)
        xs.append(x)
        ys.append(y)
        if limit and sum(len(a) for a in xs) >= limit:
            break
    x = np.concatenate(xs).reshape(-1, 3, 32, 32)
    y = np.concatenate(ys)
    if limit:
        x, y = x[:limit], y[:limit]
    return torch.from_numpy(x.astype(np.float32) / 127.5 - 1), torch.from_numpy(y)


def write_cifar_batch(path: str | Path, x: np.ndarray, labels) -> Path:
    """Write images (N, 3, 32, 32) uint8 as one batch in the official format (for tests and
    small subsets): a pickled dict with b'data' (N x 3072 uint8) and b'labels'."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    d = {b"batch_label": b"flowviz", b"labels": [int(v) for v in labels],
         b"data": np.ascontiguousarray(x, dtype=np.uint8).reshape(len(x), 3072),
         b"filenames": [f"{i}.png".encode() for i in range(len(x))]}
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)
    return path


def md5(path: str | Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_cifar(dest: str | Path, url: str = CIFAR_URL) -> Path:
    """Opt-in: fetch the official archive into ``dest``, check its MD5, unpack the batches.
    Returns the batches folder. Never called by the app or the tests."""
    import urllib.request

    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "cifar-10-python.tar.gz"
    if not archive.is_file() or md5(archive) != CIFAR_MD5:
        urllib.request.urlretrieve(url, archive)  # noqa: S310 - the official https URL
    if (got := md5(archive)) != CIFAR_MD5:
        raise ImageDataError(f"{archive}: MD5 {got} differs from the official {CIFAR_MD5}")
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile()
                   and m.name.startswith(CIFAR_DIR + "/") and ".." not in m.name]
        tar.extractall(dest, members=members, filter="data")
    return dest / CIFAR_DIR


# --- samplers (n, generator) -> (x, labels), as flowviz.data's ------------------------------------


def tensor_sampler(x: torch.Tensor, labels: torch.Tensor | None = None):
    """Draw rows of a fixed image set with replacement (indices drawn on the generator's
    device: a CUDA generator with the images on the GPU never waits for the host)."""
    labels = torch.zeros(len(x), dtype=torch.long) if labels is None else labels

    def sample(n: int, g: torch.Generator):
        idx = torch.randint(0, len(x), (n,), generator=g, device=g.device)
        return x[idx.to(x.device)], labels[idx.to(labels.device)]

    return sample


def seeded_normal(dims: tuple[int, ...], n: int, seed: int = 0, device="cpu") -> torch.Tensor:
    """n draws of N(0, I) (n, *dims) from a CPU generator seeded with ``seed``: the same x0
    on every machine, for every method and NFE of a comparison."""
    return normal_sampler(dims)(n, torch.Generator().manual_seed(seed))[0].to(device)


def normal_sampler(dims: tuple[int, ...]):
    """x0 ~ N(0, I) of shape (n, *dims), drawn on the generator's device."""

    def sample(n: int, g: torch.Generator):
        return torch.randn(n, *dims, generator=g, device=g.device), \
            torch.zeros(n, dtype=torch.long, device=g.device)

    return sample
