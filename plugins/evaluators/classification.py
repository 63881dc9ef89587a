"""``classification``: held-out accuracy of a fine-tuned ``classification`` objective's head
(SNLI-VE's and image classification's metric, ALBEF §4).

Each held-out sample is encoded unmasked (its image and its first caption, empty when it
has none), the objective picks its feature (fused [CLS], image [CLS] / mean, text [CLS])
and its task head predicts the class. Reported against the majority class and chance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from framework.api import (
    DATASET_SLOT,
    ComponentSpec,
    EvalModel,
    EvalModelError,
    eval_batches,
    evaluator_schema,
    objective_name,
    topk_accuracy,
)


def first_of_type(recipe: Mapping[str, Any], kind: str) -> str:
    """The name of the recipe's first objective of type ``kind``."""
    for cfg in recipe["objectives"]:
        if cfg["type"] == kind:
            return objective_name(cfg)
    raise EvalModelError(f"this evaluation needs an objective of type '{kind}' (its task head), but the recipe has "
                         f"only {[c['type'] for c in recipe['objectives']]}")


class HeldOutView:
    """What an objective reads from a view: unmasked encodings, the fusion run on first use."""

    def __init__(self, model: EvalModel, images: torch.Tensor, captions: list[str]) -> None:
        self.model = model
        self.image = model.encode_images(images)
        self.text = model.encode_texts(captions)
        self._fused: Any = None

    @property
    def fused(self) -> Any:
        if self._fused is None:
            self._fused = self.model.require("fusion")(self.image, self.text)
        return self._fused


class ClassificationAccuracy:
    """Top-1 (and top-5) accuracy of a classification objective on a labelled held-out source."""

    def __init__(self, *, objective: Optional[str], max_samples: Optional[int], batch_size: int,
                 dataset: Optional[Mapping[str, Any]] = None) -> None:
        self.objective, self.max_samples, self.batch_size, self.dataset = objective, max_samples, batch_size, dataset

    def __call__(self, model: EvalModel, out_dir: Path) -> dict[str, float]:
        name = self.objective or first_of_type(model.recipe, "classification")
        if name not in model.model.objectives:
            raise EvalModelError(f"no objective named '{name}'; the recipe has {list(model.model.objectives)}")
        head = model.model.objectives[name]
        logits, labels = [], []
        for batch in eval_batches(model.recipe, model.dataset("eval", self.dataset), batch_size=self.batch_size,
                                  max_samples=self.max_samples):
            if batch.labels is None:
                raise EvalModelError("classification needs a labelled held-out source: samples must carry a \"label\"")
            captions = [group[0] if group else "" for group in batch.captions]
            logits.append(head.logits(HeldOutView(model, batch.images, captions)).cpu())
            labels.append(batch.labels)
        all_logits, all_labels = torch.cat(logits), torch.cat(labels)
        counts = torch.bincount(all_labels, minlength=head.classes)
        return {**topk_accuracy(all_logits, all_labels), "majority_top1": 100.0 * counts.max().item() / len(all_labels),
                "chance_top1": 100.0 / head.classes, "samples": float(len(all_labels))}


SCHEMA = evaluator_schema({
    "objective": {"type": ["string", "null"], "default": None,
                  "description": "Name of the classification objective whose head predicts (null: the first of its "
                                 "type)."},
    "max_samples": {"type": ["integer", "null"], "minimum": 1, "default": None,
                    "description": "Score the first this many held-out samples (null: all)."},
    "batch_size": {"type": "integer", "minimum": 1, "default": 64, "description": "Samples per forward pass."},
    "dataset": DATASET_SLOT,
})

COMPONENTS = [ComponentSpec("evaluator", "classification", ClassificationAccuracy, SCHEMA,
                            "Held-out accuracy of a classification objective's task head.")]
