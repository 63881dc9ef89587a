"""Fixtures of the encoder tests: a registry with the encoder plugin and a build context."""

from __future__ import annotations

import pytest
from encoder_helpers import PAD, VOCAB

from framework.registry import BuildContext, Registry
from framework_plugins import encoders
from tests.helpers import registry_of


@pytest.fixture
def registry() -> Registry:
    return registry_of(encoders, "encoders")


@pytest.fixture
def context(registry: Registry) -> BuildContext:
    return BuildContext(
        registry, {"image_size": 32, "vocab_size": VOCAB, "pad_token_id": PAD, "max_text_len": 12}
    )
