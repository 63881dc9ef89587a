"""One way to build a run from a validated recipe: seed, data, tokenizer, model, teacher.

``run``, ``eval``, ``info``, ``masks``, ``bench`` and validation all build through here,
in the same order, so they see the same model (same seed, same tokenizer, same views).
:func:`build_shapes` builds on the meta device with no data read and no weights loaded:
what validation and the inspection of a paper recipe on any machine need.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from framework import data as data_lib
from framework.activation_checkpointing import (
    apply_activation_checkpointing,
    recipe_setting,
)
from framework.assemble import assemble
from framework.bench.synthetic import StandInTokenizer
from framework.model import RecipeModel
from framework.registry import Registry
from framework.seeding import seed_everything

DEFAULT_VOCAB_SIZE = 30522
"""bert-base-uncased's vocabulary: the stand-in size when a recipe's tokenizer states none."""


@dataclass
class BuiltRun:
    """Everything a recipe builds before training: ``dataset`` is ``None`` when no data was read."""

    recipe: Mapping[str, Any]
    registry: Registry
    tokenizer: Any
    model: RecipeModel
    teacher: Optional[Any]
    dataset: Optional[Any] = None


def seed_run(recipe: Mapping[str, Any]) -> None:
    """Seed every generator a build draws from, so each rank and each tool builds the same
    initial weights."""
    seed_everything(recipe["train"]["seed"])


def build_run(recipe: Mapping[str, Any], registry: Registry, *, tokenizer: Any = None, read_data: bool = True,
              load_pretrained: bool = True, pretrained_configs: Optional[Mapping[str, Any]] = None) -> BuiltRun:
    """Seed, then the training dataset (``read_data``), the tokenizer (learnt from that
    dataset unless one is given), the student and the teacher.

    ``load_pretrained=False`` skips the pretrained weights components name (the caller
    loads a run's model file instead, whose ``pretrained_configs`` record the architectures
    those files described), so a run never needs the files it started from."""
    seed_run(recipe)
    dataset = data_lib.build_dataset(recipe, registry, split="train") if read_data else None
    if tokenizer is None:
        tokenizer = data_lib.build_tokenizer(recipe, registry, dataset)
    seed_run(recipe)  # the same weights whether or not a dataset was read first
    model, teacher = assemble(recipe, registry, tokenizer, load_pretrained=load_pretrained,
                              pretrained_configs=pretrained_configs)
    apply_activation_checkpointing(model, recipe_setting(recipe))  # the student's blocks; names unchanged
    return BuiltRun(recipe, registry, tokenizer, model, teacher, dataset)


def build_shapes(recipe: Mapping[str, Any], registry: Registry) -> BuiltRun:
    """The recipe's model on the meta device: every component built and checked, no data
    read, no weights loaded or allocated (seconds for a paper recipe)."""
    tokenizer = stand_in_tokenizer(recipe)
    with torch.device("meta"):
        model, teacher = assemble(recipe, registry, tokenizer, load_pretrained=False)
    apply_activation_checkpointing(model, recipe_setting(recipe))  # so validation refuses a slot run would
    return BuiltRun(recipe, registry, tokenizer, model, teacher)


def stand_in_tokenizer(recipe: Mapping[str, Any]) -> StandInTokenizer:
    """A tokenizer of the recipe's vocabulary size without reading data: the size a
    pretrained tokenizer's files state, else the tokenizer's ``vocab_size`` param, else
    :data:`DEFAULT_VOCAB_SIZE`."""
    cfg = recipe["data"]["tokenizer"]
    size = _saved_vocab_size(Path(cfg["path"])) if isinstance(cfg.get("path"), str) else None
    return StandInTokenizer(size or int(cfg.get("vocab_size", DEFAULT_VOCAB_SIZE)))


def _saved_vocab_size(directory: Path) -> Optional[int]:
    """Vocabulary size of a saved tokenizer (``tokenizer.json`` or ``vocab.txt``), if readable."""
    try:
        if (directory / "tokenizer.json").is_file():
            saved = json.loads((directory / "tokenizer.json").read_text())
            added = saved.get("added_tokens", [])
            return max(len(saved["model"]["vocab"]), 1 + max((t["id"] for t in added), default=0))
        if (directory / "vocab.txt").is_file():
            return sum(1 for _ in (directory / "vocab.txt").open())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None
