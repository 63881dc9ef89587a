"""Which patches lie inside a sample's boxes (VLMAE's text-relevant regions)."""

from __future__ import annotations

import torch

from framework.types import Batch


def boxes_to_patch_mask(batch: Batch, grid: tuple[int, int], patch_size: int) -> torch.Tensor:
    """[B,N] bool: patch centre inside any valid box; all ``True`` for samples without boxes."""
    image = batch["image"]
    b = image.shape[0]
    gh, gw = grid
    if "boxes" not in batch:
        return torch.ones(b, gh * gw, dtype=torch.bool, device=image.device)
    boxes, valid = batch["boxes"], batch["box_mask"]  # [B,M,4], [B,M]
    ys = (torch.arange(gh, device=image.device) + 0.5) * patch_size
    xs = (torch.arange(gw, device=image.device) + 0.5) * patch_size
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")  # [gh,gw]
    cx, cy = cx.reshape(1, 1, -1), cy.reshape(1, 1, -1)  # [1,1,N]
    x0, y0, x1, y1 = (boxes[..., i, None] for i in range(4))  # [B,M,1] each
    inside = (cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1) & valid[..., None]  # [B,M,N]
    in_any = inside.any(dim=1)  # [B,N]
    has_box = valid.any(dim=1, keepdim=True)  # [B,1]
    return in_any | ~has_box
