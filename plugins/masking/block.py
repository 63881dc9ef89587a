"""Block-wise patch masking on an aligned grid of square blocks (SimMIM, Xie et al. 2022 §3.1;
MaskVLM masks 32-pixel blocks of a ViT-B/16 at 60 %).

The patch grid is tiled by ``block_size / patch_size``-patch square blocks starting at the
top-left corner (blocks on the right and bottom edges are cropped when the grid is not a
multiple of the block). Blocks are visited in a random order and masked, block after
block, until the count is reached. ``count`` says what is counted, both with the rule
of every masker (:func:`.common.masked_count`: ``ceil(n * ratio)``, exact):

- ``"patches"`` (default): exactly ``ceil(L * ratio)`` patches (the same count as
  ``random_patches``), so ``ids_keep`` / ``ids_restore`` are always set and visible-only
  encoders can use these masks. Every block is fully masked or fully visible except at
  most one per sample, partly masked (its patches in raster order) to make the count
  exact; there is none when the count is a multiple of the block area and the grid a
  multiple of the block. MaskVLM's 196 patches at 0.6: 118 patches.
- ``"blocks"``: ``ceil(NB * ratio)`` whole blocks of the ``NB``, as SimMIM's
  ``MaskGenerator`` does (``mask_count = ceil(token_count * mask_ratio)`` over blocks):
  196 patches in 2x2 blocks at 0.6 mask 30 of 49 blocks, 120 patches. No block is partly
  masked. When the grid is a multiple of the block every sample masks the same number
  of patches and ``ids_keep`` is set; otherwise cropped edge blocks make the number vary,
  ``ids_keep`` / ``ids_restore`` are ``None`` (mask-token encoders only) and
  ``ids_masked`` is padded to the largest possible count.
"""

from __future__ import annotations

import torch

from framework.api import ComponentSpec, MaskingOutput

from ._common import (
    RATIO,
    SHARED,
    check_ratio,
    masked_count,
    num_kept,
    params_schema,
    shuffle_masking,
    uniform,
)

SCHEMA = params_schema({
    "ratio": {**RATIO, "default": 0.6},
    "block_size": {"type": "integer", "minimum": 1, "default": 32,
                   "description": "Side of a square block in pixels; a multiple of the encoder's patch size and at "
                                  "most the image side."},
    "shared_across_batch": SHARED,
    "count": {"enum": ["patches", "blocks"], "default": "patches",
              "description": "What the ratio counts: patches (exactly ceil(L * ratio) patches, at most one block "
                             "partly masked; any encoder) or blocks (ceil(blocks * ratio) whole blocks, as SimMIM: "
                             "120 of 196 patches for 32 px blocks of 16 px patches at 0.6)."},
})


def block_layout(grid: tuple[int, int], block: int,
                 device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor, int]:
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


def block_sizes(grid: tuple[int, int], block: int) -> list[int]:
    """Patches in each block of :func:`block_layout` (raster order of blocks); edge blocks
    are cropped when the grid is not a multiple of ``block``."""
    def spans(n: int) -> list[int]:
        return [block] * (n // block) + ([n % block] if n % block else [])

    return [h * w for h in spans(grid[0]) for w in spans(grid[1])]


class BlockMasking:
    """Mask random whole blocks of ``block_size`` pixels until ``ratio`` of the patches are masked."""

    def __init__(self, *, ratio: float, block_size: int, shared_across_batch: bool, count: str = "patches") -> None:
        self.ratio = check_ratio(ratio)
        self.block_size = int(block_size)
        self.shared_across_batch = shared_across_batch
        if count not in ("patches", "blocks"):
            raise ValueError(f"block masking counts 'patches' or 'blocks', not {count!r}")
        self.count = count

    def block_patches(self, grid: tuple[int, int], patch_size: int) -> int:
        """Side of a block in patches; a clear error when the block does not fit the patch grid."""
        if self.block_size % patch_size:
            raise ValueError(f"block_size {self.block_size} px is not a multiple of the encoder's patch size "
                             f"{patch_size} px; use a multiple such as "
                             f"{patch_size * max(1, round(self.block_size / patch_size))}")
        if self.block_size > min(grid) * patch_size:
            raise ValueError(f"block_size {self.block_size} px is larger than the image side "
                             f"{min(grid) * patch_size} px; use a block of at most that size")
        return self.block_size // patch_size

    def __call__(self, *, batch_size: int, grid: tuple[int, int], patch_size: int, generator: torch.Generator,
                 device: torch.device | str) -> MaskingOutput:
        block = self.block_patches(grid, patch_size)
        block_id, within, num_blocks = block_layout(grid, block, device)  # [L], [L]
        rows = 1 if self.shared_across_batch else batch_size
        noise = uniform((rows, num_blocks), generator=generator, device=device)  # [B or 1, NB]
        block_rank = torch.argsort(torch.argsort(noise, dim=1, stable=True), dim=1, stable=True)  # [B or 1, NB]
        # patches sort by their block's random rank, then by raster position inside the block
        key = block_rank[:, block_id] * block * block + within  # [B or 1, L] distinct integers
        length = grid[0] * grid[1]
        if self.count == "patches":
            return shuffle_masking(key.expand(batch_size, length), num_kept(length, self.ratio))
        # whole blocks: the ceil(NB * ratio) highest-ranked blocks are masked (SimMIM)
        masked_blocks = masked_count(num_blocks, self.ratio)
        sizes = block_sizes(grid, block)  # host arithmetic: no sync
        if all(size == block * block for size in sizes):  # every block whole: a fixed count, the MAE shuffle applies
            return shuffle_masking(key.expand(batch_size, length), length - masked_blocks * block * block)
        mask = block_rank[:, block_id] >= num_blocks - masked_blocks  # [B or 1, L]
        most = sum(sorted(sizes, reverse=True)[:masked_blocks])  # largest possible masked count
        ids_masked = torch.argsort(key, dim=1, descending=True, stable=True)[:, :most]  # [B or 1, M] masked first
        return MaskingOutput(mask=mask.expand(batch_size, length), ids_masked=ids_masked.expand(batch_size, most))


COMPONENTS = [
    ComponentSpec("image_masking", "block", BlockMasking, SCHEMA,
                  "Block-wise masking of square blocks aligned to the patch grid (SimMIM; MaskVLM 32 px, 60%)."),
]
