"""One seed for every global generator a process draws from.

Python's ``random``, NumPy's legacy global generator and torch's (the CPU one and every
GPU's) are seeded together, so a plugin drawing from any of them is reproducible: two
identical runs hold, and checkpoint (:func:`framework.checkpoint.rng_state`), the same
states. Components should still prefer an explicit ``torch.Generator``.
"""

from __future__ import annotations

import random

import numpy as np
import torch

NUMPY_SEEDS = 2**32
"""NumPy's global generator takes seeds below 2**32; larger seeds are reduced modulo it."""


def seed_everything(seed: int) -> None:
    """Seed ``random``, NumPy's global generator and torch (CPU and all GPUs) with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % NUMPY_SEEDS)
    torch.manual_seed(seed)
