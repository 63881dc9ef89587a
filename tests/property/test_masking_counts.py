"""One count rule for every masker: ``ceil(n * ratio)`` of ``n`` positions, exact on the ratio
as written (issue 19: ``int(5 * (1 - 0.8))`` kept 0 of 5 patches)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from masking_strategies import MASK, SPECIAL_IDS, VOCAB, captions, grids, ratios, seeds

from framework_plugins.masking._common import masked_count, masked_counts, num_kept
from framework_plugins.masking.block import BlockMasking, block_sizes
from framework_plugins.masking.drop import TokenDropping
from framework_plugins.masking.mlm import MaskedLanguageModelling, eligible_tokens
from framework_plugins.masking.random_patches import RandomPatches
from framework_plugins.masking.region import RegionMasking

PATCH = 4
DECIMALS = st.integers(0, 99).map(lambda k: k / 100)  # ratios as a recipe writes them: 0.8, 0.15, ...
ANY_RATIO = st.one_of(DECIMALS, ratios)


def exact(n: int, ratio: float) -> int:
    """The rule, computed here without the code under test."""
    return math.ceil(n * Fraction(repr(ratio)))


@pytest.mark.parametrize("n, ratio, masked", [(5, 0.8, 4), (100, 0.8, 80), (196, 0.6, 118), (196, 0.75, 147),
                                              (10, 0.3, 3), (3, 0.15, 1), (7, 0.0, 0), (1, 0.5, 1)])
def test_the_rule_on_the_cases_of_the_issue(n, ratio, masked):
    assert masked_count(n, ratio) == masked and num_kept(n, ratio) == n - masked


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 10_000), ratio=ANY_RATIO)
def test_rule_is_exact_and_masks_one_whenever_the_ratio_is_positive(n, ratio):
    count = masked_count(n, ratio)
    assert count == exact(n, ratio)
    assert (count >= 1) == (ratio > 0 and n > 0) and count <= n
    assert masked_counts(torch.tensor([n]), ratio, most=n).tolist() == [count]  # the device version agrees


@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from(["random_patches", "block", "region"]), ratio=ANY_RATIO, side=st.integers(1, 3),
       grid=grids, batch=st.integers(1, 4), seed=seeds)
def test_every_image_masker_masks_the_exact_count_of_patches(kind, ratio, side, grid, batch, seed):
    if kind == "block":
        assume(side <= min(grid))
        masker = BlockMasking(ratio=ratio, block_size=side * PATCH, shared_across_batch=False)
    else:
        masker = (RandomPatches(ratio=ratio, shared_across_batch=False) if kind == "random_patches"
                  else RegionMasking(ratio=ratio))
    g = torch.Generator().manual_seed(seed)
    out = masker(batch_size=batch, grid=grid, patch_size=PATCH, generator=g, device="cpu")
    assert out.mask.sum(1).tolist() == [exact(grid[0] * grid[1], ratio)] * batch


@settings(max_examples=100, deadline=None)
@given(ratio=ANY_RATIO, side=st.integers(1, 3), grid=grids, batch=st.integers(1, 4), seed=seeds)
def test_whole_block_count_masks_the_exact_count_of_blocks(ratio, side, grid, batch, seed):
    assume(side <= min(grid))
    masker = BlockMasking(ratio=ratio, block_size=side * PATCH, shared_across_batch=False, count="blocks")
    g = torch.Generator().manual_seed(seed)
    out = masker(batch_size=batch, grid=grid, patch_size=PATCH, generator=g, device="cpu")
    sizes = block_sizes(grid, side)
    per_row = -(-grid[1] // side)
    block_of = torch.tensor([[(r // side) * per_row + c // side for r in range(grid[0]) for c in range(grid[1])]])
    for row in out.mask:
        per_block = torch.zeros(len(sizes), dtype=torch.long).index_add_(0, block_of[0], row.long())
        whole = per_block == torch.tensor(sizes)
        assert ((per_block == 0) | whole).all(), "a block is partly masked"
        assert int(whole.sum()) == exact(len(sizes), ratio)
    assert out.ids_masked.shape[1] >= int(out.mask.sum(1).max())


@settings(max_examples=100, deadline=None)
@given(ratio=ANY_RATIO, batch=captions(), seed=seeds, kind=st.sampled_from(["mlm", "drop"]))
def test_every_text_masker_counts_by_the_same_rule(ratio, batch, seed, kind):
    g = torch.Generator().manual_seed(seed)
    if kind == "mlm":
        masker = MaskedLanguageModelling(ratio=ratio, mask_prob=0.8, random_prob=0.1, vocab_size=VOCAB,
                                         special_token_ids=SPECIAL_IDS, mask_token_id=MASK)
        out = masker(**batch, generator=g)
        eligible = eligible_tokens(batch["attention_mask"], batch["special_tokens_mask"]).sum(1).tolist()
        assert out.mask.sum(1).tolist() == [exact(n, ratio) for n in eligible]
    else:
        out = TokenDropping(ratio=ratio, shared_across_batch=False)(**batch, generator=g)
        length = batch["input_ids"].shape[1]
        assert out.ids_keep.shape[1] == length - exact(length, ratio)
