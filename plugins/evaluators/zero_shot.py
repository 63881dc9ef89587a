"""``zero_shot``: classify images by their similarity to prompted class names (CLIP §3.1.4;
MaskVLM reports zero-shot classification the same way).

Each class name is written into every prompt template, the prompts are embedded with the
ITC text projection, averaged per class and re-normalised (CLIP's prompt ensembling);
an image's prediction is the class whose embedding is most similar to its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import torch
import torch.nn.functional as F

from framework.api import (
    DATASET_SLOT,
    ComponentSpec,
    EvalModel,
    EvalModelError,
    contrastive_heads,
    embed_texts,
    eval_batches,
    evaluator_schema,
    read_names,
    topk_accuracy,
)


def class_embeddings(model: EvalModel, heads: torch.nn.Module, classes: list[str], templates: list[str],
                     batch_size: int) -> torch.Tensor:
    """[C,E] normalised mean embedding of every template filled with each class name."""
    prompts = [template.format(name) for name in classes for template in templates]
    text = embed_texts(model, heads, prompts, batch_size).view(len(classes), len(templates), -1)  # [C,P,E]
    return F.normalize(text.mean(dim=1), dim=-1)


def class_names(dataset: Any, given: Optional[list[str] | str]) -> list[str]:
    """``given`` names (a list or a file of them), else the dataset's ``label_names`` / ``classes``."""
    names = read_names(given, "zero_shot classes file") or getattr(dataset, "label_names", None) \
        or getattr(dataset, "classes", None)
    if not names:
        raise EvalModelError(f"zero_shot needs class names: set \"classes\" in the task, or use a source with a "
                             f"label_names attribute ({type(dataset).__name__} has none)")
    return list(names)


class ZeroShot:
    """Top-1/top-5 accuracy of prompt-based classification on a labelled source."""

    def __init__(self, *, objective: Optional[str], classes: Optional[list[str] | str], templates: list[str] | str,
                 max_samples: Optional[int], batch_size: int, dataset: Optional[Mapping[str, Any]] = None) -> None:
        templates = read_names(templates, "zero_shot templates file")
        unfilled = [t for t in templates if "{}" not in t]
        if unfilled:
            raise EvalModelError(f"zero_shot template {unfilled[0]!r} has no {{}} for the class name")
        self.objective, self.classes, self.templates = objective, classes, templates
        self.max_samples, self.batch_size, self.dataset = max_samples, batch_size, dataset

    def __call__(self, model: EvalModel, out_dir: Path) -> dict[str, float]:
        heads = contrastive_heads(model, self.objective)
        dataset = model.dataset("eval", self.dataset)
        names = class_names(dataset, self.classes)
        weights = class_embeddings(model, heads, names, self.templates, self.batch_size)  # [C,E]
        logits, labels = [], []
        for batch in eval_batches(model.recipe, dataset, batch_size=self.batch_size, max_samples=self.max_samples):
            if batch.labels is None:
                raise EvalModelError("zero_shot needs a labelled source: its samples must carry an integer \"label\"")
            logits.append(heads.embed_image(model.encode_images(batch.images)) @ weights.t())  # [B,C]
            labels.append(batch.labels)
        all_labels = torch.cat(labels)
        if int(all_labels.max()) >= len(names):
            raise EvalModelError(f"a sample has label {int(all_labels.max())} but only {len(names)} classes are named")
        return {**topk_accuracy(torch.cat(logits), all_labels), "chance_top1": 100.0 / len(names),
                "samples": float(all_labels.shape[0])}


SCHEMA = evaluator_schema({
    "objective": {"type": ["string", "null"], "default": None,
                  "description": "Name of the ITC objective whose projections embed (null: the first of type itc)."},
    "classes": {"oneOf": [{"type": "null"}, {"type": "string"},
                          {"type": "array", "items": {"type": "string"}, "minItems": 2}], "default": None,
                "description": "Class names in label order, or a file of them (one per line, or a JSON list) "
                               "(null: the source's label_names)."},
    "templates": {"oneOf": [{"type": "string"},
                            {"type": "array", "items": {"type": "string", "pattern": "\\{\\}"}, "minItems": 1}],
                  "default": ["a {}", "an image with a {}"],
                  "description": "Prompt templates, or a file of them (one per line, or a JSON list); {} is replaced "
                                 "by the class name (CLIP uses 'a photo of a {}.')."},
    "max_samples": {"type": ["integer", "null"], "minimum": 1, "default": 1000,
                    "description": "Classify the first this many images (null: all)."},
    "batch_size": {"type": "integer", "minimum": 1, "default": 64,
                   "description": "Images or prompts per forward pass."},
    "dataset": DATASET_SLOT,
})

COMPONENTS = [ComponentSpec("evaluator", "zero_shot", ZeroShot, SCHEMA,
                            "Zero-shot top-1/top-5 accuracy from prompted class names through the ITC heads.")]
