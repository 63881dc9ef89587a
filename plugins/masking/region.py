"""Region-aware patch masking (VLMAE's Regional Masked Image Modeling, Wang et al. 2022 §3.4).

VLMAE reconstructs the masked patches inside the text-relevant region (the boxes that
ground a caption) and treats the whole image as the region when a caption has no box.
This masker masks exactly ``ceil(L * ratio)`` patches per sample (:func:`.common.masked_count`), chosen first
at random among the patches that overlap a valid box and then, when those run out, at
random among the others. A sample without boxes is masked uniformly at random.
"""

from __future__ import annotations

from typing import Optional

import torch

from framework.api import ComponentSpec, MaskingOutput

from ._common import (
    RATIO,
    check_ratio,
    num_kept,
    params_schema,
    shuffle_masking,
    uniform,
)

SCHEMA = params_schema({"ratio": {**RATIO, "default": 0.75}})


def patches_in_boxes(boxes: torch.Tensor, box_mask: Optional[torch.Tensor], grid: tuple[int, int],
                     patch_size: int) -> torch.Tensor:
    """[B, L] bool: patches (raster order) that overlap a valid box with positive area.

    Args:
        boxes: [B, M, 4] pixel coordinates ``x0, y0, x1, y1``.
        box_mask: [B, M] bool, ``True`` for real boxes (``None``: all are real).
    """
    rows, cols = grid
    x0 = torch.arange(cols, device=boxes.device, dtype=boxes.dtype) * patch_size  # [W'] patch left edges
    y0 = torch.arange(rows, device=boxes.device, dtype=boxes.dtype) * patch_size  # [H'] patch top edges
    bx0, by0, bx1, by1 = (boxes[..., i, None] for i in range(4))  # each [B, M, 1]
    in_x = (x0 < bx1) & (x0 + patch_size > bx0)  # [B, M, W']
    in_y = (y0 < by1) & (y0 + patch_size > by0)  # [B, M, H']
    inside = in_y[..., :, None] & in_x[..., None, :]  # [B, M, H', W']
    inside = inside & ((bx1 > bx0) & (by1 > by0))[..., None]  # boxes without area cover nothing
    if box_mask is not None:
        inside = inside & box_mask.bool()[..., None, None]
    return inside.any(dim=1).reshape(boxes.shape[0], rows * cols)  # [B, L]


class RegionMasking:
    """Mask ``ratio`` of the patches, taking patches inside the grounding boxes first."""

    reads = ("boxes", "box_mask")  # batch fields the step passes to this masker

    def __init__(self, *, ratio: float) -> None:
        self.ratio = check_ratio(ratio)

    def __call__(self, *, batch_size: int, grid: tuple[int, int], patch_size: int, generator: torch.Generator,
                 device: torch.device | str, boxes: Optional[torch.Tensor] = None,
                 box_mask: Optional[torch.Tensor] = None) -> MaskingOutput:
        length = grid[0] * grid[1]
        noise = uniform((batch_size, length), generator=generator, device=device)  # [B, L] in [0, 1)
        if boxes is not None and boxes.shape[1] > 0:
            inside = patches_in_boxes(boxes.to(device), None if box_mask is None else box_mask.to(device), grid,
                                      patch_size)
            noise = noise + inside.to(noise.dtype)  # [B, L] patches in a box sort last, i.e. are masked first
        return shuffle_masking(noise, num_kept(length, self.ratio))


COMPONENTS = [
    ComponentSpec("image_masking", "region", RegionMasking, SCHEMA,
                  "Region-aware masking: mask patches inside grounding boxes first (VLMAE RMIM); random without "
                  "boxes."),
]
