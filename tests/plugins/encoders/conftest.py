"""Fixtures of the encoder tests: a registry with the encoder plugin and a build context."""

from __future__ import annotations

import pytest
from encoder_helpers import PAD, VOCAB

from framework.registry import BuildContext, Registry
from plugins import encoders


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.register_plugin(encoders, name="encoders", distribution="framework==test")
    return reg


@pytest.fixture
def context(registry: Registry) -> BuildContext:
    return BuildContext(
        registry, {"image_size": 32, "vocab_size": VOCAB, "pad_token_id": PAD, "max_text_len": 12}
    )
