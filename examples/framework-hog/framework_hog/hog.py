"""HOG targets computed on the fly, as MaskFeat predicts them (Wei et al., CVPR 2022, §3).

Per colour channel: gradients with the centred [-1, 0, 1] filter and its transpose; each
pixel votes its gradient magnitude into one of ``bins`` unsigned orientation bins over
[0, π); votes are summed over ``cell_size`` x ``cell_size`` pixel cells, and each cell's
histogram is L2-normalised (the local contrast normalisation that makes HOG robust to
brightness and contrast). A patch's target concatenates the histograms of its
``(patch_size / cell_size)²`` cells for the three channels: MaskFeat's 16-px patches of
8-px cells with 9 bins give 2·2·3·9 = 108 values, regressed with an L2 loss on masked
patches.

The batch holds dataset-normalised images. Per-channel normalisation shifts a channel
(gradients ignore that) and scales it by 1/std (every vote of the channel scales alike,
and the per-cell L2 normalisation cancels it), so the targets equal those of the raw
image up to ``eps``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from framework.api import BuildContext, ComponentSpec, EncodedView, StepContext


def hog_cells(images: torch.Tensor, *, cell_size: int, bins: int, eps: float) -> torch.Tensor:
    """Per-cell, per-channel orientation histograms, L2-normalised within each cell.

    Args:
        images: [B,C,H,W] float; H and W multiples of ``cell_size``.
    Returns:
        [B,C,bins,H/cell_size,W/cell_size].
    """
    b, c, h, w = images.shape
    padded = F.pad(images.float(), (1, 1, 1, 1), mode="replicate")  # [B,C,H+2,W+2]
    gx = padded[:, :, 1:-1, 2:] - padded[:, :, 1:-1, :-2]  # [B,C,H,W]
    gy = padded[:, :, 2:, 1:-1] - padded[:, :, :-2, 1:-1]  # [B,C,H,W]
    magnitude = torch.sqrt(gx * gx + gy * gy)  # [B,C,H,W]
    angle = torch.remainder(torch.atan2(gy, gx), math.pi)  # [B,C,H,W] unsigned, in [0, π)
    index = (angle * (bins / math.pi)).long().clamp_(max=bins - 1)  # [B,C,H,W]
    votes = torch.zeros(b, c, bins, h, w, dtype=magnitude.dtype, device=images.device)
    votes.scatter_(2, index.unsqueeze(2), magnitude.unsqueeze(2))  # [B,C,bins,H,W]
    s = cell_size
    cells = votes.view(b, c, bins, h // s, s, w // s, s).sum(dim=(4, 6))  # [B,C,bins,H/s,W/s]
    return cells / (cells.norm(dim=2, keepdim=True) + eps)


def hog_patches(images: torch.Tensor, *, patch_size: int, cell_size: int, bins: int, eps: float) -> torch.Tensor:
    """[B,C,H,W] images -> [B,N,C·k·k·bins] HOG per patch (k = patch_size / cell_size), in
    the encoder's row-major patch order; within a patch: channel, cell row, cell column, bin."""
    cells = hog_cells(images, cell_size=cell_size, bins=bins, eps=eps)  # [B,C,bins,gh·k,gw·k]
    b, c, _, rows, cols = cells.shape
    k = patch_size // cell_size
    grid = cells.view(b, c, bins, rows // k, k, cols // k, k)  # [B,C,bins,gh,k,gw,k]
    per_patch = grid.permute(0, 3, 5, 1, 4, 6, 2)  # [B,gh,gw,C,k,k,bins]
    return per_patch.reshape(b, (rows // k) * (cols // k), c * k * k * bins)


class HogTarget(nn.Module):
    """MaskFeat's target: the HOG features of each patch of the (unmasked) input image."""

    loss_kind = "regression"
    requires_teacher = False

    def __init__(self, *, cell_size: int, bins: int, eps: float, context: BuildContext) -> None:
        super().__init__()
        self.patch_size = context["patch_size"]
        if self.patch_size % cell_size:
            raise ValueError(f"HOG cell_size {cell_size} does not divide the encoder's patch size {self.patch_size}; "
                             f"choose a divisor of {self.patch_size} (MaskFeat: 8 for 16-px patches)")
        self.cell_size, self.bins, self.eps = cell_size, bins, eps
        self.dim = 3 * (self.patch_size // cell_size) ** 2 * bins

    @torch.no_grad()
    def forward(self, ctx: StepContext, view: EncodedView) -> torch.Tensor:
        """[B,N,dim] targets of ``ctx.batch["image"]``; ``view`` is unused (HOG of the full image)."""
        return hog_patches(ctx.batch["image"], patch_size=self.patch_size, cell_size=self.cell_size,
                           bins=self.bins, eps=self.eps)


SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "cell_size": {"type": "integer", "minimum": 1, "default": 8,
                      "description": "Side of a HOG cell in pixels; must divide the patch size (MaskFeat: 8)."},
        "bins": {"type": "integer", "minimum": 2, "default": 9,
                 "description": "Unsigned orientation bins over [0, π) (MaskFeat: 9)."},
        "eps": {"type": "number", "exclusiveMinimum": 0, "default": 1e-6,
                "description": "Added to each cell's L2 norm so flat cells give zeros instead of NaN."},
    },
}

COMPONENTS = [ComponentSpec("target", "hog", HogTarget, SCHEMA,
                            "HOG features of each patch, computed on the fly (MaskFeat).")]
