"""Checkerboard image masking: hide alternate squares of ``square`` x ``square`` patches.

Half the image is hidden, spread evenly over it, so every masked patch has visible
neighbours; each sample draws which colour of the board is hidden and, with
``random_offset``, how far the board is shifted. A structured counterpart to random
masking for ablations.

The :class:`~framework.types.MaskingOutput` contract: ``ids_keep`` / ``ids_restore`` are
exact whenever every sample of the batch hides the same number of patches (always when
the grid sides are multiples of ``2 * square``), so visible-only encoders can drop the
masked patches; otherwise they are ``None``.
"""

from __future__ import annotations

from typing import Optional

import torch

from framework.api import ComponentSpec, MaskingOutput


def board_mask(phase: torch.Tensor, offset_y: torch.Tensor, offset_x: torch.Tensor, grid: tuple[int, int],
               square: int) -> torch.Tensor:
    """[B,L] checkerboard masks (``True`` = masked) of per-sample ``phase`` in {0, 1} and
    offsets in [0, square), all [B] long tensors, over a row-major ``grid``."""
    rows = torch.arange(grid[0], device=phase.device)  # [gh]
    cols = torch.arange(grid[1], device=phase.device)  # [gw]
    square_row = (rows[None, :] + offset_y[:, None]) // square  # [B,gh]
    square_col = (cols[None, :] + offset_x[:, None]) // square  # [B,gw]
    colour = (square_row[:, :, None] + square_col[:, None, :] + phase[:, None, None]) % 2  # [B,gh,gw]
    return (colour == 0).flatten(1)  # [B,L]


def shuffle_ids(mask: torch.Tensor) -> MaskingOutput:
    """Attach ``ids_keep`` [B,K] (visible positions, in position order) and ``ids_restore`` [B,L]
    to ``mask`` [B,L] when every row hides the same count; else leave them ``None``."""
    hidden = mask.sum(dim=1)  # [B]
    if not bool((hidden == hidden[0]).all()):
        return MaskingOutput(mask=mask)
    ids_shuffle = torch.argsort(mask.to(torch.int8), dim=1, stable=True)  # [B,L] visible first
    ids_restore = torch.argsort(ids_shuffle, dim=1, stable=True)  # [B,L] inverse permutation
    keep = mask.shape[1] - int(hidden[0])
    return MaskingOutput(mask=mask, ids_keep=ids_shuffle[:, :keep], ids_restore=ids_restore)


class Checkerboard:
    """Mask one colour of a checkerboard of ``square``-patch squares, drawn per sample."""

    def __init__(self, *, square: int, random_offset: bool) -> None:
        if square < 1:
            raise ValueError(f"checkerboard square must be at least 1 patch, got {square}")
        self.square = square
        self.random_offset = random_offset

    def __call__(self, *, batch_size: int, grid: tuple[int, int], patch_size: int, generator: torch.Generator,
                 device: torch.device | str, boxes: Optional[torch.Tensor] = None,
                 box_mask: Optional[torch.Tensor] = None) -> MaskingOutput:
        choices = 2 * (self.square ** 2 if self.random_offset else 1)
        # drawn on the generator's device, so a CPU generator gives the same masks on any device
        draws = torch.randint(choices, (batch_size,), generator=generator, device=generator.device).to(device)
        offset = draws // 2  # [B] in [0, square²) when random_offset, else 0
        mask = board_mask(draws % 2, offset // self.square, offset % self.square, grid, self.square)
        return shuffle_ids(mask)


SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "square": {"type": "integer", "minimum": 1, "default": 1,
                   "description": "Side of a checker square, in patches."},
        "random_offset": {"type": "boolean", "default": True,
                          "description": "Shift each sample's board by a random 0..square-1 patches per axis; "
                                         "false aligns every board with the top-left corner."},
    },
}

COMPONENTS = [ComponentSpec("image_masking", "checkerboard", Checkerboard, SCHEMA,
                            "Hide alternate squares of patches (half the image), colour and offset drawn per sample.")]
