"""Fixtures of the fusion tests: a registry with the fusion plugin and a build context."""

from __future__ import annotations

import pytest
from fusion_helpers import make_context

from framework.registry import BuildContext, Registry
from framework_plugins import fusion
from tests.helpers import registry_of


@pytest.fixture
def registry() -> Registry:
    return registry_of(fusion, "fusion")


@pytest.fixture
def context(registry: Registry) -> BuildContext:
    return make_context(registry)
