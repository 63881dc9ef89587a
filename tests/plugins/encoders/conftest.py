"""Fixtures of the encoder tests: a registry with the encoder plugin, a context, random masks."""

from __future__ import annotations

import pytest
import torch

from framework.registry import BuildContext, Registry
from framework.types import MaskingOutput
from plugins import encoders

VOCAB, PAD = 50, 1


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.register_plugin(encoders, name="encoders", distribution="framework==test")
    return reg


@pytest.fixture
def context(registry: Registry) -> BuildContext:
    return BuildContext(registry, {"image_size": 32, "vocab_size": VOCAB, "pad_token_id": PAD, "max_text_len": 12})


def random_mask(batch: int, length: int, keep: int, seed: int = 0) -> MaskingOutput:
    """MAE-style mask keeping ``keep`` random positions per sample."""
    noise = torch.rand(batch, length, generator=torch.Generator().manual_seed(seed))
    shuffle = noise.argsort(dim=1)
    ids_keep = shuffle[:, :keep]
    mask = torch.ones(batch, length, dtype=torch.bool).scatter(1, ids_keep, False)
    return MaskingOutput(mask, ids_keep, shuffle.argsort(dim=1))
