"""AdamW (Loshchilov & Hutter 2019), the optimiser of every paper recipe here, with
torch's fused kernel: one launch for all parameters, and the ``found_inf`` flag through
which the non-finite guard skips an update without a host sync."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from framework.api import ComponentSpec, OptimizerComponent, optimizer_schema

SCHEMA = optimizer_schema({
    "betas": {
        "type": "array", "items": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        "minItems": 2, "maxItems": 2, "default": [0.9, 0.999], "description": "Adam betas.",
    },
    "eps": {"type": "number", "exclusiveMinimum": 0, "default": 1e-8, "description": "Adam epsilon."},
})


class AdamW(OptimizerComponent):
    """torch's fused AdamW over the engine's param groups."""

    def __init__(self, *, betas: Sequence[float], eps: float, **common: Any) -> None:
        super().__init__(**common)
        self.betas, self.eps = (float(betas[0]), float(betas[1])), eps

    def __call__(self, param_groups: list[dict[str, Any]], *, lr: float) -> torch.optim.Optimizer:
        return torch.optim.AdamW(param_groups, lr=lr, betas=self.betas, eps=self.eps, fused=True)


COMPONENTS = [
    ComponentSpec("optimizer", "adamw", AdamW, SCHEMA,
                  "AdamW with decoupled weight decay (fused kernel); no decay on norms, biases, embeddings."),
]
