"""``classification``: cross-entropy of a task head over a pooled feature of a view, for
fine-tuning on labelled data (ALBEF §4: SNLI-VE's 3-way head on the fused [CLS]; a linear
head on the image [CLS] for image classification).

``source`` picks the feature: ``fused`` the fusion's pooled pair vector (the fused [CLS]),
``image_cls`` / ``image_mean`` the image encoder's [CLS] or mean patch token, ``text_cls``
the text encoder's [CLS]. Labels are the batch's ``label`` [B] (a labelled source's
integer class ids); ``ignore_index`` entries are not scored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from framework.api import BuildContext, ComponentSpec, EncodedView, LossOutput, Objective, StepContext, objective_schema

from ..heads.classifier import TASK_HEAD_SLOT

SOURCES = ("fused", "image_cls", "image_mean", "text_cls")
IGNORE_INDEX = -100


def pooled_feature(view: EncodedView, source: str) -> torch.Tensor:
    """The [B,D] feature ``source`` names from an encoded view."""
    if source == "fused":
        return view.fused.pooled
    if source == "image_cls":
        return view.image.cls
    if source == "image_mean":
        return view.image.patches.mean(dim=1)
    return view.text.cls


def feature_width(source: str, context: BuildContext) -> int:
    return context[{"fused": "fusion_width", "text_cls": "text_width"}.get(source, "image_width")]


class Classification(Objective):
    """Cross-entropy (with optional label smoothing) of ``head(feature)`` against ``label``."""

    def __init__(self, *, name: str, weight: float, view: str, source: str, classes: int, head: dict,
                 label_smoothing: float, context: BuildContext) -> None:
        super().__init__(name=name, weight=weight)
        self.view, self.source, self.classes, self.label_smoothing = view, source, classes, label_smoothing
        if source == "fused" and context.get("fusion_width") is None:
            raise ValueError("classification with source 'fused' needs model.fusion; pick image_cls or text_cls")
        self.head = context.build("task_head", head, in_dim=feature_width(source, context), classes=classes)

    def logits(self, view: EncodedView) -> torch.Tensor:
        return self.head(pooled_feature(view, self.source)).float()  # [B,C]

    def forward(self, ctx: StepContext) -> LossOutput:
        if "label" not in ctx.batch:
            raise KeyError(f"objective '{self.objective_name}' needs labelled batches (a \"label\" per sample): use a "
                           "labelled source (manifest with labels, image_folder with labels: subfolders, "
                           "synthetic_shapes)")
        logits = self.logits(ctx.view(self.view))  # [B,C]
        labels = ctx.batch["label"].to(logits.device)  # [B]
        if labels.device.type == "cpu":  # free here; on an accelerator cross_entropy asserts on the device (no sync)
            bad = [v for v in labels.tolist() if v != IGNORE_INDEX and not 0 <= v < self.classes]  # host values
            if bad:
                raise ValueError(f"objective '{self.objective_name}' has classes={self.classes} but a batch holds "
                                 f"label {bad[0]}; set classes to the source's number of classes")
        loss = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, label_smoothing=self.label_smoothing)
        scored = labels != IGNORE_INDEX
        accuracy = ((logits.argmax(-1) == labels) & scored).sum() / scored.sum().clamp(min=1)
        return LossOutput(loss, {"accuracy": accuracy.detach()})


COMPONENTS = [ComponentSpec("objective", "classification", Classification, objective_schema({
    "view": {"type": "string", "x-framework-ref": "views", "description": "The view to classify (usually unmasked)."},
    "source": {"enum": list(SOURCES), "default": "fused",
               "description": "Feature the head reads: fused (the fusion's pooled [CLS]), image_cls, image_mean or "
                              "text_cls."},
    "classes": {"type": "integer", "minimum": 2, "description": "Number of classes (labels are 0..classes-1)."},
    "head": TASK_HEAD_SLOT,
    "label_smoothing": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.0,
                        "description": "Label smoothing of the cross-entropy."},
}, required=("view", "classes")), "Cross-entropy of a task head on a pooled feature against the batch's labels.")]
