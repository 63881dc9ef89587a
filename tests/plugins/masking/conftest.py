"""Fixtures of the masking tests: a registry with only the masking plugin and a build context."""

from __future__ import annotations

import pytest
from masking_batches import MASK, SPECIAL_IDS, VOCAB

from framework.registry import BuildContext, Registry
from framework_plugins import masking
from tests.helpers import registry_of


@pytest.fixture
def registry() -> Registry:
    return registry_of(masking, "masking")


@pytest.fixture
def context(registry: Registry) -> BuildContext:
    return BuildContext(registry, {"vocab_size": VOCAB, "mask_token_id": MASK, "special_token_ids": SPECIAL_IDS})
