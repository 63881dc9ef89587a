"""Task heads: classifiers from a pooled feature to class logits, for fine-tuning.

A ``task_head`` is called as ``head(features)`` with ``features`` [B,D] (the fused [CLS] /
pooled pair vector, or an encoder's [CLS] or mean token, as the objective using it picks)
and returns logits [B,C]. It is built with ``in_dim`` (D) and ``classes`` (C) in the
context. ``hidden: 0`` gives one linear layer; otherwise ALBEF's downstream heads
(§4 "VE" and "VQA"/"NLVR" heads: ``Linear(D, H)``, ReLU, ``Linear(H, C)``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from framework.api import BuildContext, ComponentSpec

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class Classifier(nn.Module):
    """Optional LayerNorm and dropout, then a linear layer or a one-hidden-layer MLP."""

    def __init__(self, *, hidden: int, activation: str, dropout: float, layernorm: bool, context: BuildContext) -> None:
        super().__init__()
        in_dim, classes = context["in_dim"], context["classes"]
        assert classes >= 2, f"a classifier needs at least 2 classes, got {classes}"
        layers: list[nn.Module] = [nn.LayerNorm(in_dim)] if layernorm else []
        layers += [nn.Dropout(dropout)] if dropout > 0 else []
        if hidden:
            layers += [nn.Linear(in_dim, hidden), ACTIVATIONS[activation](), nn.Linear(hidden, classes)]
        else:
            layers.append(nn.Linear(in_dim, classes))
        self.layers = nn.Sequential(*layers)
        self.in_dim, self.classes = in_dim, classes

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        assert features.dim() == 2 and features.shape[1] == self.in_dim, \
            f"classifier expects features [B,{self.in_dim}], got {tuple(features.shape)}"
        return self.layers(features)  # [B,C]


COMPONENTS = [ComponentSpec("task_head", "classifier", Classifier, {
    "type": "object", "additionalProperties": False,
    "properties": {
        "hidden": {"type": "integer", "minimum": 0, "default": 0,
                   "description": "Hidden width of a two-layer MLP head (0: a single linear layer; ALBEF: 2 x width)."},
        "activation": {"enum": sorted(ACTIVATIONS), "default": "relu",
                       "description": "Non-linearity between the MLP's layers (ALBEF: relu)."},
        "dropout": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.0,
                    "description": "Dropout on the input features."},
        "layernorm": {"type": "boolean", "default": False, "description": "LayerNorm the input features first."},
    },
}, "Linear or MLP classifier from a pooled feature to class logits.")]

TASK_HEAD_SLOT: dict[str, Any] = {"x-framework-kind": "task_head", "default": {"type": "classifier"},
                                  "description": "Classifier from the pooled feature to the classes (a `task_head`)."}
