"""Shared pytest setup for every test suite (unit, app, e2e).

- torch uses 2 threads (the reference machine has 2 cores; more threads only add contention).
- `seed` fixture: seeds python, numpy and torch and returns the seed, for reproducible tests.
- tests marked `gpu` are skipped when CUDA is not available.
- flowviz.store writes to a temporary folder, never to the user's ~/.cache.
"""

import os
import random
import tempfile
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning: on a busy 2-core machine spinning threads
# fight each other and tiny models run ~60x slower. Must be set before torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ["FLOWVIZ_CACHE"] = tempfile.mkdtemp(prefix="flowviz-test-cache-")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]  # the repository

SEED = 0

torch.set_num_threads(2)


def labels_passed(objective) -> torch.Tensor:
    """The ``label=`` a conditional objective passes to its network in one call (after label
    dropout): the objective runs once on a network that only records it."""
    seen = {}

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, t, label=None):
            seen["label"] = label
            return x * self.w

    objective(Spy(), torch.Generator().manual_seed(0))
    return seen["label"]


@pytest.fixture
def seed() -> int:
    """Seed python, numpy and torch with a fixed value; returns that value."""
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    return SEED


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
