"""Block-wise patch masking on an aligned grid of square blocks (SimMIM, Xie et al. 2022 §3.1;
MaskVLM masks 32-pixel blocks of a ViT-B/16 at 60 %).

The patch grid is tiled by ``block_size / patch_size``-patch square blocks starting at the
top-left corner (blocks on the right and bottom edges are cropped when the grid is not a
multiple of the block). Blocks are visited in a random order and their patches masked
block after block until exactly ``L - int(L * (1 - ratio))`` patches are masked, so:

- the kept count is exact (the same rule as ``random_patches``), hence ``ids_keep`` /
  ``ids_restore`` are always set and visible-only encoders can use these masks;
- every block is either fully masked or fully visible, except at most one block per
  sample, which is partly masked (its patches in raster order) to make the count exact.
  When the masked count is a multiple of the block area and the grid a multiple of the
  block, there is no partial block at all, as in SimMIM.
"""

from __future__ import annotations

from typing import Optional

import torch

from framework import ComponentSpec
from framework.types import MaskingOutput

from .common import (
    RATIO,
    SHARED,
    check_ratio,
    num_kept,
    params_schema,
    shuffle_masking,
    uniform,
)

SCHEMA = params_schema({
    "ratio": {**RATIO, "default": 0.6},
    "block_size": {"type": "integer", "minimum": 1, "default": 32,
                   "description": "Side of a square block in pixels; a multiple of the encoder's patch size and at most the image side."},
    "shared_across_batch": SHARED,
})


def block_layout(grid: tuple[int, int], block: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Which block each patch belongs to and its index inside the block.

    Returns ``block_id`` [L] and ``within`` [L] (raster position inside the block, < block**2)
    for patches in raster order, and the number of blocks.
    """
    rows, cols = grid
    r = torch.arange(rows, device=device)[:, None].expand(rows, cols)  # [H', W'] patch row
    c = torch.arange(cols, device=device)[None, :].expand(rows, cols)  # [H', W'] patch column
    blocks_per_row = -(-cols // block)
    block_id = (r // block) * blocks_per_row + c // block  # [H', W']
    within = (r % block) * block + c % block  # [H', W']
    return block_id.reshape(-1), within.reshape(-1), (-(-rows // block)) * blocks_per_row


class BlockMasking:
    """Mask random whole blocks of ``block_size`` pixels until ``ratio`` of the patches are masked."""

    def __init__(self, *, ratio: float, block_size: int, shared_across_batch: bool) -> None:
        self.ratio = check_ratio(ratio)
        self.block_size = int(block_size)
        self.shared_across_batch = shared_across_batch

    def block_patches(self, grid: tuple[int, int], patch_size: int) -> int:
        """Side of a block in patches; a clear error when the block does not fit the patch grid."""
        if self.block_size % patch_size:
            raise ValueError(f"block_size {self.block_size} px is not a multiple of the encoder's patch size "
                             f"{patch_size} px; use a multiple such as {patch_size * max(1, round(self.block_size / patch_size))}")
        if self.block_size > min(grid) * patch_size:
            raise ValueError(f"block_size {self.block_size} px is larger than the image side "
                             f"{min(grid) * patch_size} px; use a block of at most that size")
        return self.block_size // patch_size

    def __call__(self, *, batch_size: int, grid: tuple[int, int], patch_size: int, generator: torch.Generator,
                 device: torch.device | str, boxes: Optional[torch.Tensor] = None,
                 box_mask: Optional[torch.Tensor] = None) -> MaskingOutput:
        block = self.block_patches(grid, patch_size)
        block_id, within, num_blocks = block_layout(grid, block, device)  # [L], [L]
        rows = 1 if self.shared_across_batch else batch_size
        noise = uniform((rows, num_blocks), generator=generator, device=device)  # [B or 1, NB]
        block_rank = torch.argsort(torch.argsort(noise, dim=1, stable=True), dim=1, stable=True)  # [B or 1, NB]
        # patches sort by their block's random rank, then by raster position inside the block
        key = block_rank[:, block_id] * block * block + within  # [B or 1, L] distinct integers
        length = grid[0] * grid[1]
        return shuffle_masking(key.expand(batch_size, length), num_kept(length, self.ratio))


COMPONENTS = [
    ComponentSpec("image_masking", "block", BlockMasking, SCHEMA,
                  "Block-wise masking of square blocks aligned to the patch grid (SimMIM; MaskVLM 32 px, 60%)."),
]
