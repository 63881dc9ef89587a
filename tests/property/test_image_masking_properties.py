"""Invariants of every image masker, for arbitrary grids, batches, ratios and seeds."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from masking_strategies import (
    PATCH,
    assert_lists_masked,
    assert_partition,
    assert_restores,
    boxes,
    grids,
    image_maskers,
    ratios,
    seeds,
)

from framework_plugins.masking._common import num_kept
from framework_plugins.masking.block import BlockMasking, block_layout
from framework_plugins.masking.random_patches import RandomPatches
from framework_plugins.masking.region import RegionMasking, patches_in_boxes

batches = st.integers(1, 5)


def fits(masker, grid: tuple[int, int]) -> bool:
    return not isinstance(masker, BlockMasking) or masker.block_size <= min(grid) * PATCH


def run(masker, batch: int, grid: tuple[int, int], seed: int, device: str = "cpu", generator_device: str = "cpu",
        **extra):
    generator = torch.Generator(device=generator_device).manual_seed(seed)
    return masker(batch_size=batch, grid=grid, patch_size=PATCH, generator=generator, device=device, **extra)


@settings(max_examples=50, deadline=None)
@given(masker=image_maskers(), batch=batches, grid=grids, seed=seeds)
def test_partition_count_and_restore(masker, batch, grid, seed) -> None:
    """Disjoint + cover, exactly L - ceil(L * ratio) kept (>= 1 masked if ratio > 0), restore inverts."""
    assume(fits(masker, grid))
    out = run(masker, batch, grid, seed)
    length = grid[0] * grid[1]
    assert out.mask.shape == (batch, length) and out.mask.dtype == torch.bool
    expected = length - math.ceil(length * Fraction(repr(masker.ratio)))
    assert out.ids_keep.shape == (batch, expected) and ((~out.mask).sum(1) == expected).all()
    if masker.ratio > 0:
        assert out.mask.any(dim=1).all()
    assert_partition(out.mask, out.ids_keep)
    assert_restores(out.ids_keep, out.ids_restore, out.mask)
    assert_lists_masked(out.mask, out.ids_masked, length - expected)


@settings(max_examples=50, deadline=None)
@given(masker=image_maskers(), batch=batches, grid=grids, seed=seeds)
def test_same_seed_same_mask(masker, batch, grid, seed) -> None:
    assume(fits(masker, grid))
    first, second = run(masker, batch, grid, seed), run(masker, batch, grid, seed)
    assert torch.equal(first.mask, second.mask) and torch.equal(first.ids_keep, second.ids_keep)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@settings(max_examples=20, deadline=None)
@given(masker=image_maskers(), batch=batches, grid=grids, seed=seeds)
def test_same_seed_same_mask_on_cuda(masker, batch, grid, seed) -> None:
    """A CPU generator gives the CPU mask on CUDA tensors; a CUDA generator is reproducible."""
    assume(fits(masker, grid))
    cpu = run(masker, batch, grid, seed)
    on_cuda = run(masker, batch, grid, seed, device="cuda")
    assert on_cuda.mask.is_cuda and torch.equal(on_cuda.mask.cpu(), cpu.mask)
    assert torch.equal(on_cuda.ids_restore.cpu(), cpu.ids_restore)
    first = run(masker, batch, grid, seed, device="cuda", generator_device="cuda")
    second = run(masker, batch, grid, seed, device="cuda", generator_device="cuda")
    assert torch.equal(first.mask, second.mask)


@settings(max_examples=50, deadline=None)
@given(masker=image_maskers(shared=True), batch=st.integers(2, 5), grid=grids, seed=seeds)
def test_batch_shared_masks_are_equal(masker, batch, grid, seed) -> None:
    assume(not isinstance(masker, RegionMasking) and fits(masker, grid))
    out = run(masker, batch, grid, seed)
    assert (out.mask == out.mask[:1]).all() and (out.ids_keep == out.ids_keep[:1]).all()


def distinct_masks(masker, grid: tuple[int, int]) -> int:
    """How many different masks a sample can get (a lower bound for block masking)."""
    length = grid[0] * grid[1]
    masked = length - num_kept(length, masker.ratio)
    if isinstance(masker, BlockMasking):
        side = masker.block_size // PATCH
        blocks = block_layout(grid, side, "cpu")[2]
        return math.comb(blocks, masked // (side * side))
    return math.comb(length, masked)


@settings(max_examples=50, deadline=None)
@given(masker=image_maskers(shared=False), grid=grids, seed=seeds)
def test_per_sample_masks_differ(masker, grid, seed) -> None:
    """With >= 10**6 possible masks, two samples drawing the same one has chance <= 1e-6."""
    assume(fits(masker, grid) and distinct_masks(masker, grid) >= 10**6)
    out = run(masker, 2, grid, seed)
    assert not torch.equal(out.mask[0], out.mask[1])


@settings(max_examples=50, deadline=None)
@given(ratio=ratios, side=st.integers(1, 3), batch=batches, grid=grids, seed=seeds)
def test_block_masks_aligned_to_grid(ratio, side, batch, grid, seed) -> None:
    """Every block of side*side patches is fully masked or fully visible, except at most one."""
    assume(side <= min(grid))
    out = run(BlockMasking(ratio=ratio, block_size=side * PATCH, shared_across_batch=False), batch, grid, seed)
    block_id, _, num_blocks = block_layout(grid, side, "cpu")
    per_block = torch.zeros(batch, num_blocks).index_add_(1, block_id, out.mask.float())  # masked patches per block
    size = torch.zeros(num_blocks).index_add_(0, block_id, torch.ones(len(block_id)))  # patches per block
    partial = (per_block > 0) & (per_block < size)
    assert (partial.sum(1) <= 1).all()


@settings(max_examples=50, deadline=None)
@given(data=st.data(), ratio=ratios, batch=batches, grid=grids, seed=seeds)
def test_region_masks_inside_boxes_first(data, ratio, batch, grid, seed) -> None:
    """Patches outside the boxes are masked only once every patch inside them is masked."""
    box, valid = data.draw(boxes(batch, grid))
    out = run(RegionMasking(ratio=ratio), batch, grid, seed, boxes=box, box_mask=valid)
    inside = patches_in_boxes(box, valid, grid, PATCH)
    assert ((out.mask & inside).sum(1) == torch.minimum(out.mask.sum(1), inside.sum(1))).all()


def test_region_without_boxes_is_random_patches() -> None:
    """No boxes at all: the same draw as per-sample random masking."""
    region = run(RegionMasking(ratio=0.6), 3, (5, 5), 7)
    random = run(RandomPatches(ratio=0.6, shared_across_batch=False), 3, (5, 5), 7)
    assert torch.equal(region.mask, random.mask)
