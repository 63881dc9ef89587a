"""mlm / mask_only: pinned seeded output, corruption rules, errors."""

from __future__ import annotations

import jsonschema
import pytest
import torch
from masking_batches import MASK, SPECIAL_IDS, VOCAB, captions

from framework_plugins.masking.mlm import (
    IGNORE_INDEX,
    MLM_SCHEMA,
    MaskedLanguageModelling,
)


def make(ratio: float = 0.3, mask_prob: float = 0.8, random_prob: float = 0.1) -> MaskedLanguageModelling:
    return MaskedLanguageModelling(ratio=ratio, mask_prob=mask_prob, random_prob=random_prob, vocab_size=VOCAB,
                                   mask_token_id=MASK, special_token_ids=SPECIAL_IDS)


def test_pinned_seeded_output() -> None:
    batch = captions([6, 3], 10)
    assert batch["input_ids"].tolist() == [[1, 31, 33, 28, 11, 19, 11, 2, 0, 0], [1, 6, 28, 7, 2, 0, 0, 0, 0, 0]]
    out = make()(**batch, generator=torch.Generator().manual_seed(0))
    assert out.input_ids.tolist() == [[1, 31, 3, 29, 11, 19, 11, 2, 0, 0], [1, 6, 3, 7, 2, 0, 0, 0, 0, 0]]
    assert out.labels.tolist() == [[-100, -100, 33, 28] + [-100] * 6, [-100, -100, 28] + [-100] * 7]


def test_counts_are_the_ceiling_of_ratio_times_eligible() -> None:
    batch = captions([10, 1, 3], 14)
    out = make(ratio=0.15)(**batch, generator=torch.Generator().manual_seed(1))
    # ceil(1.5) -> 2, ceil(0.15) -> 1, ceil(0.45) -> 1: at least one whenever ratio > 0
    assert out.mask.sum(1).tolist() == [2, 1, 1]
    assert torch.equal(out.labels != IGNORE_INDEX, out.mask)


def test_mask_only_uses_only_mask_token(context) -> None:
    masker = context.build("text_masking", {"type": "mask_only"})
    batch = captions([20, 12], 24)
    out = masker(**batch, generator=torch.Generator().manual_seed(0))
    assert masker.ratio == 0.3
    assert (out.input_ids[out.mask] == MASK).all()
    assert torch.equal(out.input_ids[~out.mask], batch["input_ids"][~out.mask])


def test_random_replacement_never_special() -> None:
    batch = captions([30] * 64, 32)
    out = make(ratio=0.9, mask_prob=0.0, random_prob=1.0)(**batch, generator=torch.Generator().manual_seed(0))
    replaced = out.input_ids[out.mask]
    assert replaced.numel() > 1000 and not torch.isin(replaced, torch.tensor(SPECIAL_IDS)).any()


def test_probabilities_summing_over_one_rejected() -> None:
    with pytest.raises(ValueError, match="at most 1"):
        make(mask_prob=0.8, random_prob=0.3)


@pytest.mark.parametrize("params", [{"ratio": 1.0}, {"ratio": -0.5}, {"mask_prob": 1.2}, {"unknown": 1}])
def test_schema_rejects(params: dict) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(params, MLM_SCHEMA)


def test_builds_from_context(context) -> None:
    masker = context.build("text_masking", {"type": "mlm"})
    assert (masker.ratio, masker.mask_prob, masker.random_prob, masker.mask_token_id) == (0.15, 0.8, 0.1, MASK)
