"""Masked image modeling: predict a target (pixels, codes, teacher features) per patch.

Covers MAE/SimMIM pixel regression (L1 in MaskVLM, MSE in VLMAE/M3AE), classification of
discrete visual tokens (BEiT, M3AE's discrete variant, MAMO Table 9) and regression of
momentum-teacher features (MAMO Eq. 2). The loss is averaged over masked patches, all
patches, or masked patches inside the caption's boxes (VLMAE's RMIM). Samples without an
image (``has_image`` False) are not scored; image-only samples form M3AE's unpaired group
(see :mod:`framework_plugins.objectives.unpaired`).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from framework.api import (
    DECODER_REF,
    VIEW_REF,
    BuildContext,
    ComponentSpec,
    LossOutput,
    Objective,
    StepContext,
    at_positions,
    objective_schema,
)

from ..decoders.heads import HEAD_SLOT
from ..masking.region import patches_in_boxes
from ._features import SOURCE, source_width, view_tokens
from ._unpaired import UNPAIRED_WEIGHT, paired_unpaired_mean, presence

REGRESSION = {"mse": F.mse_loss, "l1": F.l1_loss, "smooth_l1": F.smooth_l1_loss}


class MaskedImageModeling(Objective):
    """Loss between ``head(features)`` and ``target`` at the chosen patch positions."""

    def __init__(self, *, name: str, weight: float, view: str, decoder: Optional[str], source: str, target: dict,
                 head: dict, loss: str, positions: str, unpaired_weight: float, context: BuildContext) -> None:
        super().__init__(name=name, weight=weight)
        self.view, self.decoder, self.source = view, decoder, source
        self.loss, self.positions, self.unpaired_weight = loss, positions, unpaired_weight
        self.target = context.build("target", target)
        if (loss == "ce") != (self.target.loss_kind == "classification"):
            raise ValueError(f"loss '{loss}' does not fit target '{target['type']}' ({self.target.loss_kind}); use "
                             f"{'ce' if self.target.loss_kind == 'classification' else 'mse, l1 or smooth_l1'}")
        self.requires_teacher = self.target.requires_teacher
        in_dim = source_width(context, "image", decoder, source)
        self.head = context.build("head", head, in_dim=in_dim, out_dim=self.target.dim)
        self.patch_size = context["patch_size"]
        self.grid = context["grid"]

    def _text_relevant(self, batch: dict) -> torch.Tensor:
        """[B,N] bool: patches overlapping the sample's boxes (the region masker's rule);
        every patch for samples without boxes (VLMAE: the whole image)."""
        if "boxes" not in batch:
            return torch.ones(batch["image"].shape[0], self.grid[0] * self.grid[1], dtype=torch.bool,
                              device=batch["image"].device)
        inside = patches_in_boxes(batch["boxes"], batch["box_mask"], self.grid, self.patch_size)  # [B,N]
        return inside | ~inside.any(dim=1, keepdim=True)

    def _weights(self, ctx: StepContext) -> torch.Tensor:
        """[B,N] float: which patches count in the loss (none of samples without an image)."""
        mask = ctx.view(self.view).image_mask
        device = ctx.batch["image"].device
        if self.positions == "all" or mask is None:
            if self.positions != "all":
                raise RuntimeError(f"objective '{self.objective_name}' scores masked patches but view '{self.view}' "
                                   "masks no image")
            weights = torch.ones(ctx.batch_size, self.grid[0] * self.grid[1], device=device)
        else:
            weights = mask.mask.float()
        if self.positions == "masked_in_boxes":
            weights = weights * self._text_relevant(ctx.batch).float()
        has_image = presence(ctx.batch, "image")
        return weights if has_image is None else weights * has_image[:, None]

    def _scored_ids(self, ctx: StepContext) -> Optional[torch.Tensor]:
        """[B,K] candidate positions (the mask's ``ids_masked``), or None to score all."""
        mask = ctx.view(self.view).image_mask
        return None if self.positions == "all" or mask is None else mask.ids_masked

    def forward(self, ctx: StepContext) -> LossOutput:
        tokens = view_tokens(ctx, self.view, "image", self.decoder, self.source)[:, 1:]  # [B,N',D]
        if tokens.shape[1] != self.grid[0] * self.grid[1]:
            raise RuntimeError(f"objective '{self.objective_name}' needs a token per patch but view '{self.view}' "
                               "has visible-only tokens; read them through a decoder that restores masked positions")
        weights = self._weights(ctx)  # [B,N]
        target = self.target(ctx, ctx.view(self.view))  # [B,N,dim] or [B,N] class ids
        ids = self._scored_ids(ctx)
        pred = self.head(at_positions(tokens, ids))  # [B,K,dim]: only candidate patches pay for the head
        target, weights = at_positions(target, ids), at_positions(weights, ids)  # [B,K,...]
        if self.loss == "ce":
            per_patch = F.cross_entropy(pred.flatten(0, 1).float(), target.flatten(), reduction="none").view_as(weights)
        else:
            per_patch = REGRESSION[self.loss](pred.float(), target.float(), reduction="none").mean(-1)  # [B,K]
        loss, metrics = paired_unpaired_mean(per_patch, weights, presence(ctx.batch, "text"), self.unpaired_weight)
        return LossOutput(loss, {"patches": weights.sum().detach(), **metrics})


COMPONENTS = [ComponentSpec("objective", "mim", MaskedImageModeling, objective_schema({
    "view": VIEW_REF,
    "decoder": DECODER_REF,
    "source": SOURCE,
    "target": {"x-framework-kind": "target", "description": "What to predict per patch (a `target` component)."},
    "head": HEAD_SLOT,
    "loss": {"enum": [*REGRESSION, "ce"], "default": "mse", "description": "Regression loss, or ce for class targets."},
    "positions": {"enum": ["masked", "all", "masked_in_boxes"], "default": "masked",
                  "description": "Patches scored: masked ones, all, or masked ones overlapping the sample's boxes "
                                 "(whole image when it has none)."},
    "unpaired_weight": UNPAIRED_WEIGHT,
}, required=("view", "target")), "Masked image modeling against a pluggable target.")]
