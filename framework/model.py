"""The generic RecipeModel: encoders, fusion, decoders and objectives of any recipe.

It knows no paper. Per step it builds a :class:`StepContext`, runs each objective in
recipe order (objectives pull the views they need from the context, which masks and
encodes each view once) and returns the weighted sum of their losses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import torch
from torch import nn

from framework.context import Backbone, StepContext, Teacher, ViewSpec
from framework.objective import Objective
from framework.types import Batch


@dataclass
class StepOutput:
    """Total loss of a forward pass, each objective's (unweighted) loss and extra metrics."""

    loss: torch.Tensor
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


class RecipeModel(nn.Module):
    """Holds already-built components and sums the objectives' weighted losses.

    Encoders are optional only for recipes whose objectives read no view (e.g. training
    an image tokenizer); reading a view without them is a clear error.
    """

    def __init__(self, *, image_encoder: Optional[nn.Module], text_encoder: Optional[nn.Module],
                 fusion: Optional[nn.Module], decoders: Mapping[str, nn.Module], objectives: Mapping[str, Objective],
                 views: Mapping[str, ViewSpec]) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.fusion = fusion
        self.decoders = nn.ModuleDict(dict(decoders))
        self.objectives = nn.ModuleDict(dict(objectives))
        self.views = dict(views)

    def compile_components(self) -> None:
        """``torch.compile`` each encoder, the fusion and each decoder in place (``train.compile``);
        masking and objective plumbing stay eager, as their shapes follow the masks."""
        for part in (self.image_encoder, self.text_encoder, self.fusion, *self.decoders.values()):
            if part is not None:
                part.compile()

    def backbone(self) -> Backbone:
        return Backbone(self.image_encoder, self.text_encoder, self.fusion)

    def context(self, batch: Batch, generator: torch.Generator, teacher: Optional[Teacher] = None) -> StepContext:
        return StepContext(batch=batch, generator=generator, student=self.backbone(), views=self.views,
                           decoders=self.decoders, teacher=teacher)

    def forward(self, batch: Batch, generator: torch.Generator, teacher: Optional[Teacher] = None) -> StepOutput:
        ctx = self.context(batch, generator, teacher)
        losses, metrics, weighted = {}, {}, []
        for name, objective in self.objectives.items():
            result = objective(ctx)
            losses[name] = result.loss
            metrics.update({f"{name}/{k}": v for k, v in result.metrics.items()})  # detached by LossOutput's contract
            weighted.append(result.loss if objective.weight == 1.0 else objective.weight * result.loss)
        total = torch.stack(weighted).sum() if weighted else torch.zeros((), device=batch["image"].device)
        return StepOutput(total, losses, metrics)
