"""Helpers of the encoder tests: sizes of the tiny vocabulary and MAE-style random masks."""

from __future__ import annotations

import torch

from framework.types import MaskingOutput

VOCAB, PAD = 50, 1


def random_mask(batch: int, length: int, keep: int, seed: int = 0) -> MaskingOutput:
    """MAE-style mask keeping ``keep`` random positions per sample."""
    noise = torch.rand(batch, length, generator=torch.Generator().manual_seed(seed))
    shuffle = noise.argsort(dim=1)
    ids_keep = shuffle[:, :keep]
    mask = torch.ones(batch, length, dtype=torch.bool).scatter(1, ids_keep, False)
    return MaskingOutput(mask, ids_keep, shuffle.argsort(dim=1))
