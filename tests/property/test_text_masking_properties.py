"""Invariants of the text maskers for arbitrary captions, padding, special tokens, ratios and seeds."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from masking_strategies import (
    MASK,
    SPECIAL_IDS,
    VOCAB,
    assert_lists_masked,
    assert_partition,
    assert_restores,
    captions,
    ratios,
    seeds,
)

from framework_plugins.masking._common import num_kept
from framework_plugins.masking.drop import TokenDropping
from framework_plugins.masking.mlm import (
    IGNORE_INDEX,
    MaskedLanguageModelling,
    eligible_tokens,
    most_masked,
)


def mlm(ratio: float, mask_prob: float = 0.8, random_prob: float = 0.1) -> MaskedLanguageModelling:
    return MaskedLanguageModelling(ratio=ratio, mask_prob=mask_prob, random_prob=random_prob, vocab_size=VOCAB,
                                   mask_token_id=MASK, special_token_ids=SPECIAL_IDS)


@st.composite
def text_maskers(draw: st.DrawFn):
    ratio = draw(ratios)
    kind = draw(st.sampled_from(["mlm", "mask_only", "drop"]))
    if kind == "mlm":
        return mlm(ratio)
    if kind == "mask_only":
        return mlm(ratio, 1.0, 0.0)
    return TokenDropping(ratio=ratio, shared_across_batch=False)


def run(masker, batch, seed: int, generator_device: str = "cpu", device: str = "cpu"):
    moved = {k: v.to(device) for k, v in batch.items()}
    return masker(**moved, generator=torch.Generator(device=generator_device).manual_seed(seed))


@settings(max_examples=50, deadline=None)
@given(masker=text_maskers(), batch=captions(), seed=seeds)
def test_special_and_padding_never_masked(masker, batch, seed) -> None:
    out = run(masker, batch, seed)
    eligible = eligible_tokens(batch["attention_mask"], batch["special_tokens_mask"])
    assert not (out.mask & ~eligible).any()
    assert torch.equal(out.labels != IGNORE_INDEX, out.mask)
    assert torch.equal(out.labels[out.mask], batch["input_ids"][out.mask])
    assert torch.equal(out.input_ids[~out.mask], batch["input_ids"][~out.mask]), "only masked tokens may change"


@settings(max_examples=50, deadline=None)
@given(masker=text_maskers(), batch=captions(), seed=seeds)
def test_ids_masked_cover_the_mask_in_a_data_independent_width(masker, batch, seed) -> None:
    """Objectives gather scored tokens by ``ids_masked``; its width follows only the padded
    length and the ratio, so a step's shapes never depend on the captions."""
    out = run(masker, batch, seed)
    length = batch["input_ids"].shape[1]
    width = (length - num_kept(length, masker.ratio) if isinstance(masker, TokenDropping)
             else most_masked(length, masker.ratio))
    assert_lists_masked(out.mask, out.ids_masked, width)


@settings(max_examples=50, deadline=None)
@given(masker=text_maskers(), batch=captions(), seed=seeds)
def test_at_least_one_eligible_masked(masker, batch, seed) -> None:
    out = run(masker, batch, seed)
    has_eligible = eligible_tokens(batch["attention_mask"], batch["special_tokens_mask"]).any(dim=1)
    if masker.ratio > 0:
        assert torch.equal(out.mask.any(dim=1), has_eligible)


@settings(max_examples=50, deadline=None)
@given(ratio=ratios, batch=captions(), seed=seeds)
def test_mlm_count_rule_ignores_special_and_padding(ratio, batch, seed) -> None:
    """Exactly ceil(ratio * n_eligible) masked per sample, n counted over eligible tokens only."""
    out = run(mlm(ratio), batch, seed)
    counts = eligible_tokens(batch["attention_mask"], batch["special_tokens_mask"]).sum(1).tolist()
    expected = [math.ceil(n * Fraction(repr(ratio))) for n in counts]
    assert out.mask.sum(1).tolist() == expected


@settings(max_examples=50, deadline=None)
@given(masker=text_maskers(), batch=captions(), seed=seeds)
def test_same_seed_same_mask(masker, batch, seed) -> None:
    first, second = run(masker, batch, seed), run(masker, batch, seed)
    assert torch.equal(first.mask, second.mask) and torch.equal(first.input_ids, second.input_ids)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@settings(max_examples=20, deadline=None)
@given(masker=text_maskers(), batch=captions(), seed=seeds)
def test_same_seed_same_mask_on_cuda(masker, batch, seed) -> None:
    cpu = run(masker, batch, seed)
    on_cuda = run(masker, batch, seed, device="cuda")
    assert torch.equal(on_cuda.mask.cpu(), cpu.mask) and torch.equal(on_cuda.input_ids.cpu(), cpu.input_ids)
    first = run(masker, batch, seed, generator_device="cuda", device="cuda")
    second = run(masker, batch, seed, generator_device="cuda", device="cuda")
    assert torch.equal(first.input_ids, second.input_ids)


@settings(max_examples=10, deadline=None)
@given(probs=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)).filter(lambda p: p[0] + p[1] <= 1.0), seed=seeds)
def test_mlm_replacement_proportions_converge(probs, seed) -> None:
    """The [MASK] / random / unchanged shares of n masked tokens are within eps = 0.04 of
    (p_mask, p_rand * (1 - 1/V'), rest): a random id equals the original with chance 1/V'.
    Hoeffding bounds each deviation by 2 exp(-2 n eps^2) < 6e-6 for n >= 4000, so a wrong
    rule fails and a right one passes but with chance < 2e-5 per example."""
    mask_prob, random_prob = probs
    masker = mlm(0.5, mask_prob, random_prob)
    ids = torch.randint(len(SPECIAL_IDS), VOCAB, (128, 64), generator=torch.Generator().manual_seed(seed))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "special_tokens_mask": torch.zeros_like(ids)}
    out = run(masker, batch, seed)
    original, corrupted = ids[out.mask], out.input_ids[out.mask]
    n = original.numel()
    assert n >= 4000
    allowed = VOCAB - len(SPECIAL_IDS)
    shares = [(corrupted == MASK).sum() / n, ((corrupted != MASK) & (corrupted != original)).sum() / n,
              (corrupted == original).sum() / n]
    expected = [mask_prob, random_prob * (1 - 1 / allowed), 1 - mask_prob - random_prob * (1 - 1 / allowed)]
    for share, target in zip(shares, expected):
        assert abs(float(share) - target) < 0.04


@settings(max_examples=50, deadline=None)
@given(ratio=ratios, shared=st.booleans(), batch=captions(), seed=seeds)
def test_drop_keeps_exact_count_and_restores(ratio, shared, batch, seed) -> None:
    """T - ceil(T * ratio) positions kept over the padded length; dropped = not kept; restore inverts."""
    out = run(TokenDropping(ratio=ratio, shared_across_batch=shared), batch, seed)
    size, length = batch["input_ids"].shape
    assert out.ids_keep.shape == (size, num_kept(length, ratio))
    dropped = torch.ones_like(out.mask).scatter_(1, out.ids_keep, False)  # [B, T]
    assert_partition(dropped, out.ids_keep)
    assert_restores(out.ids_keep, out.ids_restore, dropped)
    assert torch.equal(out.mask, dropped & eligible_tokens(batch["attention_mask"], batch["special_tokens_mask"]))
    if shared:
        assert (out.ids_keep == out.ids_keep[:1]).all()


@settings(max_examples=50, deadline=None)
@given(ratio=ratios, batch=captions(), seed=seeds)
def test_drop_keeps_special_tokens_first(ratio, batch, seed) -> None:
    """Per sample, real special tokens are dropped only when they alone exceed the kept count."""
    out = run(TokenDropping(ratio=ratio, shared_across_batch=False), batch, seed)
    special = batch["attention_mask"].bool() & batch["special_tokens_mask"].bool()
    kept = torch.zeros_like(special).scatter_(1, out.ids_keep, True)
    assert ((special & kept).sum(1) == torch.clamp(special.sum(1), max=out.ids_keep.shape[1])).all()
