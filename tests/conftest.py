"""Shared fixtures and the Hypothesis profile; helpers live in tests/helpers.py."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from framework.registry import Registry, default_registry

# Every run replays the same examples with no deadline, so the verdict depends neither on
# chance nor on how loaded the machine is; HYPOTHESIS_PROFILE=explore looks for new ones.
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def registry() -> Registry:
    return default_registry()
