"""User-supplied 2-D point sets (CSV or NPY), validated before anything touches them."""

from __future__ import annotations

import io

import numpy as np
import torch

MAX_POINTS = 50_000
MAX_BYTES = 5 * 2**20


class PointsError(ValueError):
    """A user file that is not a usable (N, 2) point set; the message is shown in the UI."""


def load_points(data: bytes, filename: str) -> torch.Tensor:
    """Parse ``data`` (the bytes of a .csv/.txt or .npy file) into a float32 (N, 2) tensor.

    Never unpickles (``allow_pickle=False``). Raises PointsError with a readable message.
    """
    if len(data) > MAX_BYTES:
        raise PointsError(f"File is {len(data) / 2**20:.1f} MiB; "
                          f"the limit is {MAX_BYTES >> 20} MiB.")
    name = filename.lower()
    try:
        if name.endswith(".npy"):
            _check_npy_header(data, filename)
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        elif name.endswith((".csv", ".txt")):
            # utf-8-sig: Excel's "CSV UTF-8" starts with a BOM, which would make row 1 a "header"
            lines = [ln for ln in data.decode("utf-8-sig").splitlines() if ln.strip()]
            rows = lines[0 if lines and _is_numeric_row(lines[0]) else 1:]  # one header line
            if not rows:
                raise PointsError(f"{filename} has no data rows.")
            arr = np.loadtxt(rows, delimiter="," if "," in rows[0] else None, ndmin=2)
        else:
            raise PointsError("Upload a .csv, .txt or .npy file.")
    except PointsError:
        raise
    except Exception as e:  # noqa: BLE001 - any parse failure becomes a user message
        raise PointsError(f"Could not read {filename}: {e}") from None
    return validate_points(arr)


def _check_npy_header(data: bytes, filename: str) -> None:
    """Refuse an .npy whose header declares anything but (N <= MAX_POINTS, 2) numbers, before
    numpy allocates what the header declares (a 100-byte file can declare terabytes)."""
    f = io.BytesIO(data)
    try:
        fmt = np.lib.format
        read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
        shape, _, dtype = read[fmt.read_magic(f)](f)
    except Exception as e:  # noqa: BLE001 - a broken header is a user message
        raise PointsError(f"Could not read {filename}: {str(e)[:120]}") from None
    if dtype.hasobject:
        raise PointsError(f"Could not read {filename}: it holds Python objects (a pickle), "
                          "which are never loaded.")
    if dtype.kind not in "fiu":
        raise PointsError(f"Expected numbers, got dtype {dtype}.")
    if len(shape) != 2 or shape[1] != 2 or not 2 <= shape[0] <= MAX_POINTS:
        raise PointsError(f"Expected shape (N, 2) with N between 2 and {MAX_POINTS}, got "
                          f"{shape}.")


def _is_numeric_row(line: str) -> bool:
    try:
        [float(v) for v in line.replace(",", " ").split()]
        return True
    except ValueError:
        return False


def validate_points(arr) -> torch.Tensor:
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fiu":
        raise PointsError(f"Expected numbers, got dtype {arr.dtype}.")
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise PointsError(f"Expected shape (N, 2), got {tuple(arr.shape)}.")
    if not 2 <= arr.shape[0] <= MAX_POINTS:
        raise PointsError(f"Expected between 2 and {MAX_POINTS} points, got {arr.shape[0]}.")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(1).sum())
        raise PointsError(f"{bad} rows contain NaN or infinite values.")
    return torch.as_tensor(arr, dtype=torch.float32)


def points_sampler(points: torch.Tensor, h: float = 0.0):
    """A sampler (n, generator) -> (x, labels) drawing from the mixture of N(p_i, h^2 I) over the
    given points (h = 0: resample the points themselves, with replacement)."""
    def sample(n: int, g: torch.Generator):
        idx = torch.randint(0, len(points), (n,), generator=g)
        x = points[idx]
        if h > 0:
            x = x + h * torch.randn(x.shape, generator=g, dtype=x.dtype)
        return x, torch.zeros(n, dtype=torch.long)
    return sample
