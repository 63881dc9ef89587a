"""Fixtures of the masking tests: a registry with only the masking plugin and a build context."""

from __future__ import annotations

import pytest

from framework.registry import BuildContext, Registry
from masking_batches import MASK, SPECIAL_IDS, VOCAB
from plugins import masking


@pytest.fixture
def registry() -> Registry:
    """A fresh registry holding only the masking plugin."""
    reg = Registry()
    reg.register_plugin(masking, name="masking", distribution="framework==test")
    return reg


@pytest.fixture
def context(registry: Registry) -> BuildContext:
    return BuildContext(registry, {"vocab_size": VOCAB, "mask_token_id": MASK, "special_token_ids": SPECIAL_IDS})
