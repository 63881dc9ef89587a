"""``linear_probe``: logistic regression on frozen image features (MAE §4, linear probing).

Features of the unmasked image ([CLS] or the mean of the patch tokens) are taken for a
labelled training split: by default the image encoder's, or with ``features: fused`` the
fusion's image stream for the image alone (no text), which is what M3AE's linear
evaluation reads: its image "encoder" is only a patch embedding, and its representation
is the unified transformer run over ``[CLS] + patches`` (public code, linear evaluation on
the encoder's output with the text absent). They are taken and standardised with its statistics; a multinomial
logistic regression with L2 penalty is fitted by full-batch L-BFGS (convex, so the
optimum does not depend on the start) and scored on the held-out split.
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
    ImageEncoding,
    TextEncoding,
    eval_batches,
    evaluator_schema,
    topk_accuracy,
)


def fused_image_alone(model: EvalModel, image: ImageEncoding) -> ImageEncoding:
    """The fusion's image stream [B,1+N,D] for ``image`` with an empty caption (T = 0)."""
    fusion = model.require("fusion")
    if not getattr(fusion, "encodes_image_alone", False):
        raise EvalModelError("linear_probe features 'fused' need a fusion that encodes an image without text "
                             f"(unified, bert_concat); {type(fusion).__name__} does not: use features 'encoder'")
    batch, proj = image.tokens.shape[0], getattr(fusion, "text_proj", None)
    width = proj.in_features if isinstance(proj, torch.nn.Linear) else fusion.text_width  # the fusion's text input
    text = TextEncoding(image.tokens.new_zeros(batch, 0, width),
                        torch.zeros(batch, 0, dtype=torch.long, device=image.tokens.device))
    return ImageEncoding(fusion(image, text).image, image.layout, None, image.grid)


@torch.no_grad()
def image_features(model: EvalModel, dataset: Any, *, pooling: str, batch_size: int, max_samples: Optional[int],
                   features: str = "encoder") -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen features [N,D] (float32, on CPU) and labels [N] of ``dataset``'s first samples."""
    rows, labels = [], []
    for batch in eval_batches(model.recipe, dataset, batch_size=batch_size, max_samples=max_samples):
        if batch.labels is None:
            raise EvalModelError("linear_probe needs labelled sources: samples must carry an integer \"label\"")
        encoded = model.encode_images(batch.images)
        if features == "fused":
            encoded = fused_image_alone(model, encoded)
        pooled = encoded.cls if pooling == "cls" else encoded.patches.mean(dim=1)  # [B,D]
        rows.append(pooled.float().cpu())
        labels.append(batch.labels)
    return torch.cat(rows), torch.cat(labels)


def fit_logistic_regression(x: torch.Tensor, y: torch.Tensor, *, classes: int, weight_decay: float,
                            steps: int) -> torch.nn.Linear:
    """Multinomial logistic regression on ``x`` [N,D], ``y`` [N] by full-batch L-BFGS."""
    linear = torch.nn.Linear(x.shape[1], classes)
    torch.nn.init.zeros_(linear.weight)
    torch.nn.init.zeros_(linear.bias)
    optimizer = torch.optim.LBFGS(linear.parameters(), lr=1.0, max_iter=steps, history_size=20,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(linear(x), y) + weight_decay * linear.weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return linear


class LinearProbe:
    """Held-out accuracy of a linear classifier on frozen image-encoder features."""

    def __init__(self, *, pooling: str, features: str, weight_decay: float, steps: int,
                 max_train_samples: Optional[int], max_samples: Optional[int], batch_size: int,
                 train_dataset: Optional[Mapping[str, Any]] = None,
                 dataset: Optional[Mapping[str, Any]] = None) -> None:
        self.pooling, self.features, self.weight_decay, self.steps = pooling, features, weight_decay, steps
        self.max_train_samples, self.max_samples, self.batch_size = max_train_samples, max_samples, batch_size
        self.train_dataset, self.dataset = train_dataset, dataset

    def __call__(self, model: EvalModel, out_dir: Path) -> dict[str, float]:
        options = {"pooling": self.pooling, "features": self.features, "batch_size": self.batch_size}
        x_train, y_train = image_features(model, model.dataset("train", self.train_dataset),
                                          max_samples=self.max_train_samples, **options)
        x_test, y_test = image_features(model, model.dataset("eval", self.dataset), max_samples=self.max_samples,
                                        **options)
        mean, std = x_train.mean(dim=0), x_train.std(dim=0).clamp(min=1e-6)
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
        classes = int(torch.cat([y_train, y_test]).max()) + 1
        linear = fit_logistic_regression(x_train, y_train, classes=classes, weight_decay=self.weight_decay,
                                         steps=self.steps)
        with torch.no_grad():
            test = topk_accuracy(linear(x_test), y_test, ks=(1,))["top1"]
            train = topk_accuracy(linear(x_train), y_train, ks=(1,))["top1"]
        return {"top1": test, "train_top1": train,
                "majority_top1": 100.0 * torch.bincount(y_test).max().item() / len(y_test)}


SCHEMA = evaluator_schema({
    "pooling": {"enum": ["cls", "mean"], "default": "cls",
                "description": "Image feature: the [CLS] token or the mean of the patch tokens."},
    "features": {"enum": ["encoder", "fused"], "default": "encoder",
                 "description": "Whose image tokens: the image encoder's, or the fusion's image stream for the image "
                                "alone (no text; M3AE's linear evaluation of its unified transformer)."},
    "weight_decay": {"type": "number", "minimum": 0, "default": 1e-4, "description": "L2 penalty on the weights."},
    "steps": {"type": "integer", "minimum": 1, "default": 200, "description": "L-BFGS iterations (full batch)."},
    "max_train_samples": {"type": ["integer", "null"], "minimum": 2, "default": 2000,
                          "description": "Fit on the first this many training samples (null: all)."},
    "max_samples": {"type": ["integer", "null"], "minimum": 1, "default": 1000,
                    "description": "Score on the first this many held-out samples (null: all)."},
    "batch_size": {"type": "integer", "minimum": 1, "default": 64, "description": "Images per forward pass."},
    "train_dataset": {"x-framework-kind": "dataset",
                      "description": "Labelled source to fit on (absent: the recipe's data.train)."},
    "dataset": DATASET_SLOT,
})

COMPONENTS = [ComponentSpec("evaluator", "linear_probe", LinearProbe, SCHEMA,
                            "Logistic regression on frozen image features: held-out top-1 accuracy.")]
