"""Helpers shared by tests (imported as ``tests.helpers``; fixtures stay in conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from framework import data as data_lib
from framework.recipe import load_recipe
from framework.registry import Registry, default_registry
from framework.types import Batch
from framework.validation import validate_recipe

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "recipes"


def registry_of(plugin: Any, name: str) -> Registry:
    """A fresh registry holding only one built-in plugin module (unit tests of its components)."""
    registry = Registry()
    registry.register_plugin(plugin, name=name, distribution="framework==test")
    return registry


def tiny_recipe(*overrides: str, path: Path = RECIPES / "tiny.json") -> dict[str, Any]:
    """The tiny recipe (or ``path``) resolved, overridden and validated."""
    return validate_recipe(load_recipe(path, overrides), default_registry(), source=str(path))


def example_batch(recipe: Mapping[str, Any], registry: Registry, batch_size: int) -> tuple[Batch, Any]:
    """A real batch of the recipe's training data (no augmentation) and its tokenizer."""
    dataset = data_lib.build_dataset(recipe, registry, split="train")
    tokenizer = data_lib.build_tokenizer(recipe, registry, dataset)
    loader = data_lib.build_eval_loader(recipe, dataset, tokenizer, batch_size=batch_size)
    batch = next(iter(loader))
    return {k: v for k, v in batch.items() if torch.is_tensor(v)}, tokenizer
