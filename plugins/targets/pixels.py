"""Pixel targets: the (normalised) pixels of each patch, as MAE / SimMIM / M3AE regress."""

from __future__ import annotations

import torch
from torch import nn

from framework.api import BuildContext, ComponentSpec, EncodedView, StepContext, patchify


class PixelTarget(nn.Module):
    """Patchified input image, optionally normalised per patch (MAE's ``norm_pix_loss``)."""

    loss_kind = "regression"
    requires_teacher = False

    def __init__(self, *, normalize_per_patch: bool, context: BuildContext) -> None:
        super().__init__()
        self.patch_size = context["patch_size"]
        self.normalize_per_patch = normalize_per_patch
        self.dim = self.patch_size * self.patch_size * 3

    def forward(self, ctx: StepContext, view: EncodedView) -> torch.Tensor:
        patches = patchify(ctx.batch["image"], self.patch_size)  # [B,N,p*p*3]
        if self.normalize_per_patch:
            mean = patches.mean(dim=-1, keepdim=True)
            var = patches.var(dim=-1, keepdim=True)
            patches = (patches - mean) / (var + 1e-6).sqrt()
        return patches


COMPONENTS = [ComponentSpec("target", "pixels", PixelTarget, {
    "type": "object", "additionalProperties": False,
    "properties": {"normalize_per_patch": {"type": "boolean", "default": True,
                                           "description": "Normalise each patch by its own mean/std (MAE); false keeps "
                                                          "dataset-normalised pixels (M3AE, SimMIM)."}},
}, "Per-patch pixels of the input image.")]
