"""Building the recipe's data components: datasets and the caption tokenizer.

Component names never appear here: ``data.train`` / ``data.eval`` / ``data.tokenizer``
are built through the registry like every other slot, with the context entries a data
component may read (``image_size``, ``max_text_len``, ``mean``, ``std``, ``split`` and,
for the tokenizer, the built training ``dataset``).
"""

from __future__ import annotations

from typing import Any, Mapping

from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerFast

from framework.registry import BuildContext, Registry, fill_defaults
from framework.validation import core_schema


def data_config(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe's ``data`` section with the core schema's defaults filled in."""
    return fill_defaults(core_schema()["properties"]["data"], recipe["data"])


def data_context(recipe: Mapping[str, Any], registry: Registry, **extra: Any) -> BuildContext:
    """Build context for data components: preprocessing sizes plus ``extra``."""
    cfg = data_config(recipe)
    keys = ("image_size", "max_text_len", "mean", "std")
    return BuildContext(registry, {**{k: cfg[k] for k in keys}, **extra})


def build_dataset(recipe: Mapping[str, Any], registry: Registry, split: str = "train") -> Dataset:
    """Build ``data.train`` (``split="train"``) or ``data.eval``.

    Without ``data.eval`` the eval split is the training source built with
    ``split="eval"`` in its context; sources that support splits (``synthetic_shapes``)
    then draw disjoint samples, others must be given an explicit ``data.eval``.
    """
    if split not in ("train", "eval"):
        raise ValueError(f"unknown data split '{split}'; use 'train' or 'eval'")
    cfg = data_config(recipe)
    config = cfg.get(split) or cfg["train"]
    if (split == "eval" and "eval" not in cfg
            and "split" not in registry.get("dataset", config["type"]).schema.get("properties", {})):
        raise ValueError(f"the recipe has no data.eval and dataset '{config['type']}' has no 'split' parameter to "
                         "draw held-out samples from; add a data.eval source")
    context = data_context(recipe, registry, split=split)
    context.path = f"$.data.{split if split in cfg else 'train'}"  # named by errors such as a missing manifest
    return registry.build("dataset", config, context)


def build_tokenizer(recipe: Mapping[str, Any], registry: Registry, dataset: Dataset) -> PreTrainedTokenizerFast:
    """Build ``data.tokenizer``; tokenizers trained on data read ``context["dataset"]``."""
    cfg = data_config(recipe)
    context = data_context(recipe, registry, dataset=dataset)
    context.path = "$.data.tokenizer"
    return registry.build("tokenizer", cfg["tokenizer"], context)
