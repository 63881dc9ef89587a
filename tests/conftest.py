"""Shared fixtures: the installed registry, the repository's recipes, tiny training runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from framework.recipe import load_recipe
from framework.registry import Registry, default_registry
from framework.validation import validate_recipe

REPO = Path(__file__).resolve().parent.parent

# CI replays the same examples every run (a submission lands on a reproducible verdict);
# local runs explore new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
RECIPES = REPO / "recipes"


@pytest.fixture(scope="session")
def registry() -> Registry:
    return default_registry()


def registry_of(plugin, name: str) -> Registry:
    """A fresh registry holding only one built-in plugin module (unit tests of its components)."""
    registry = Registry()
    registry.register_plugin(plugin, name=name, distribution="framework==test")
    return registry


def tiny_recipe(*overrides: str, path: Path = RECIPES / "tiny.json") -> dict[str, Any]:
    """The tiny recipe (or ``path``) resolved, overridden and validated."""
    return validate_recipe(load_recipe(path, overrides), default_registry(), source=str(path))
