"""Command-line arguments checked before any work: numbers within bounds, output paths that can
be written, and every mistake one line on stderr with exit code 2 (no usage dump, no traceback).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (its sub-parsers are Parsers too)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def bounded(lo, hi, kind=int):
    """An argparse type: a ``kind`` (int or float) in [lo, hi]; bools, inf and nan refused."""
    what = "an integer" if kind is int else "a number"
    span = f"{lo} to {hi}" if kind is int else f"{lo:g} to {hi:g}"

    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} from {span}, got "
                                             f"{text[:40]!r}") from None
        if not math.isfinite(v) or not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{text[:40]} is outside the allowed range {span}")
        return v

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


SEED = bounded(0, 2**31 - 1)


def writable_file(path: str | Path) -> Path:
    """``path`` once its folder exists (created) and a file can be written there; else a
    ValueError with the reason, before a run spends minutes on what it could not save."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder; give a file name (e.g. {path}/run.pt)")
    writable_dir(path.parent)
    return path


def writable_dir(folder: str | Path) -> Path:
    """``folder``, created if missing, once a file can be written in it; else a ValueError."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as e:
        raise ValueError(f"cannot write to {folder}: {e.strerror or e}") from None
    if not os.access(folder, os.W_OK):
        raise ValueError(f"cannot write to {folder}: permission denied")
    return folder
