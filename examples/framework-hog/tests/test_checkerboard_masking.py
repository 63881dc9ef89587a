"""Checkerboard masking: the board, per-sample draws, and the MaskingOutput contract."""

from __future__ import annotations

import torch

from framework.registry import default_registry
from framework_hog.checkerboard import Checkerboard, board_mask, shuffle_ids


def mask_of(masker: Checkerboard, grid: tuple[int, int], batch: int = 8, seed: int = 0):
    return masker(batch_size=batch, grid=grid, patch_size=8, generator=torch.Generator().manual_seed(seed),
                  device="cpu")


def test_board_matches_the_definition():
    zero = torch.zeros(1, dtype=torch.long)
    got = board_mask(zero, zero, zero, (4, 6), square=2).view(4, 6)
    expected = torch.tensor([[((i // 2 + j // 2) % 2 == 0) for j in range(6)] for i in range(4)])
    assert torch.equal(got, expected)
    flipped = board_mask(torch.ones(1, dtype=torch.long), zero, zero, (4, 6), square=2).view(4, 6)
    assert torch.equal(flipped, ~expected)


def test_every_sample_hides_half_and_ids_are_exact():
    out = mask_of(Checkerboard(square=2, random_offset=True), (8, 8))
    assert out.mask.shape == (8, 64) and torch.equal(out.mask.sum(1), torch.full((8,), 32))
    positions = torch.arange(64).expand(8, 64)
    assert not torch.gather(out.mask, 1, out.ids_keep).any()  # ids_keep lists visible patches only
    # MAE's un-shuffle: kept tokens then fillers (-1), gathered with ids_restore, give every position back
    restored = torch.gather(torch.cat([out.ids_keep, torch.full((8, 32), -1)], 1), 1, out.ids_restore)
    assert torch.equal(restored[~out.mask], positions[~out.mask]) and (restored[out.mask] == -1).all()


def test_draws_vary_per_sample_and_repeat_per_seed():
    masker = Checkerboard(square=2, random_offset=True)
    a, b = mask_of(masker, (8, 8), batch=32), mask_of(masker, (8, 8), batch=32)
    assert torch.equal(a.mask, b.mask)
    assert len({tuple(row.tolist()) for row in a.mask}) > 2  # colours and offsets both vary
    fixed = mask_of(Checkerboard(square=2, random_offset=False), (8, 8), batch=32)
    assert len({tuple(row.tolist()) for row in fixed.mask}) == 2  # only the colour varies


def test_unequal_counts_leave_ids_unset():
    out = shuffle_ids(torch.tensor([[True, False, True], [False, True, False]]))
    assert out.ids_keep is None and out.ids_restore is None
    odd = mask_of(Checkerboard(square=1, random_offset=False), (3, 3), batch=16)
    assert set(odd.mask.sum(1).tolist()) == {4, 5} and odd.ids_keep is None


def test_registered_and_built_with_schema_defaults():
    registry = default_registry()
    assert registry.get("image_masking", "checkerboard").provider.startswith("framework-hog==")
    masker = registry.build("image_masking", {"type": "checkerboard"})
    assert (masker.square, masker.random_offset) == (1, True)
