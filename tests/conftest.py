"""Shared pytest setup for every test suite (unit, app, e2e).

- torch uses 2 threads (the reference machine has 2 cores; more threads only add contention).
- `seed` fixture: seeds python, numpy and torch and returns the seed, for reproducible tests.
- tests marked `gpu` are skipped when CUDA is not available.
"""

import random

import numpy as np
import pytest
import torch

SEED = 0

torch.set_num_threads(2)


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
