"""Hypothesis strategies and helpers shared by the masking property tests."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from framework_plugins.masking.block import BlockMasking
from framework_plugins.masking.random_patches import RandomPatches
from framework_plugins.masking.region import RegionMasking

SPECIAL_IDS = [0, 1, 2, 3]  # [PAD], [CLS], [SEP], [MASK]
PAD, MASK = 0, 3
VOCAB = 50

ratios = st.floats(min_value=0.0, max_value=0.99, allow_nan=False)
seeds = st.integers(min_value=0, max_value=2**31 - 1)
grids = st.tuples(st.integers(1, 12), st.integers(1, 12))
PATCH = 4


@st.composite
def image_maskers(draw: st.DrawFn, shared: bool | None = None):
    """Any image masker with arbitrary valid params (block sizes that fit the grid)."""
    kind = draw(st.sampled_from(["random_patches", "block", "region"]))
    ratio = draw(ratios)
    share = draw(st.booleans()) if shared is None else shared
    if kind == "random_patches":
        return RandomPatches(ratio=ratio, shared_across_batch=share)
    if kind == "block":
        return BlockMasking(ratio=ratio, block_size=PATCH * draw(st.integers(1, 3)), shared_across_batch=share)
    return RegionMasking(ratio=ratio)


@st.composite
def boxes(draw: st.DrawFn, batch: int, grid: tuple[int, int]):
    """[B, M, 4] pixel boxes inside the image and a [B, M] validity mask (some samples without)."""
    count = draw(st.integers(0, 3))
    height, width = grid[0] * PATCH, grid[1] * PATCH
    rows = []
    for _ in range(batch * count):
        x0, x1 = sorted(draw(st.integers(0, width)) for _ in range(2))
        y0, y1 = sorted(draw(st.integers(0, height)) for _ in range(2))
        rows.append([x0, y0, x1, y1])
    valid = draw(st.lists(st.booleans(), min_size=batch * count, max_size=batch * count))
    return (torch.tensor(rows, dtype=torch.float32).reshape(batch, count, 4),
            torch.tensor(valid, dtype=torch.bool).reshape(batch, count))


@st.composite
def captions(draw: st.DrawFn, max_batch: int = 6, max_len: int = 24) -> dict[str, torch.Tensor]:
    """Padded captions of arbitrary real length with special tokens anywhere among real tokens."""
    batch = draw(st.integers(1, max_batch))
    length = draw(st.integers(1, max_len))
    seed = draw(seeds)
    real = torch.tensor(draw(st.lists(st.integers(0, length), min_size=batch, max_size=batch)))  # real tokens per row
    special = torch.tensor(draw(st.lists(st.booleans(), min_size=batch * length, max_size=batch * length)))
    g = torch.Generator().manual_seed(seed)
    attention = torch.arange(length)[None, :] < real[:, None]  # [B, T]
    special = special.reshape(batch, length)  # padding may or may not be flagged special: both must work
    words = torch.randint(len(SPECIAL_IDS), VOCAB, (batch, length), generator=g)
    specials = torch.randint(1, len(SPECIAL_IDS), (batch, length), generator=g)
    ids = torch.where(special, specials, words).masked_fill(~attention, PAD)
    return {"input_ids": ids, "attention_mask": attention.long(), "special_tokens_mask": special.long()}


def assert_partition(mask: torch.Tensor, ids_keep: torch.Tensor) -> None:
    """Visible (``ids_keep``) and masked positions are disjoint and cover every position."""
    batch, length = mask.shape
    visible = torch.zeros_like(mask).scatter_(1, ids_keep, True)  # [B, L]
    assert (visible.sum(1) == ids_keep.shape[1]).all(), "ids_keep repeats a position"
    assert torch.equal(visible, ~mask), "visible and masked sets must be complementary"


def assert_restores(ids_keep: torch.Tensor, ids_restore: torch.Tensor, mask: torch.Tensor) -> None:
    """gather by keep, append fillers, gather by restore -> original order with fillers at masked."""
    batch, length = mask.shape
    values = torch.arange(1, length + 1).expand(batch, length)  # [B, L] position tags, 0 = filler
    kept = torch.gather(values, 1, ids_keep)  # [B, K]
    filled = torch.cat([kept, torch.zeros(batch, length - kept.shape[1], dtype=kept.dtype)], dim=1)  # [B, L]
    restored = torch.gather(filled, 1, ids_restore)
    assert torch.equal(restored, values.masked_fill(mask, 0))


def assert_lists_masked(mask: torch.Tensor, ids_masked: torch.Tensor, width: int) -> None:
    """``ids_masked`` [B, width] holds distinct positions covering every masked one of ``mask``."""
    assert ids_masked.shape == (mask.shape[0], width)
    listed = torch.zeros_like(mask).scatter_(1, ids_masked, True)
    assert not (mask & ~listed).any(), "a masked position is missing from ids_masked"
    assert (listed.sum(1) == width).all(), "ids_masked repeats a position"
