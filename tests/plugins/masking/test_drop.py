"""drop (M3AE token dropping): pinned seeded outputs and how padding is handled."""

from __future__ import annotations

import torch
from masking_batches import captions

from framework_plugins.masking.drop import TokenDropping


def test_pinned_per_sample() -> None:
    batch = captions([5, 2], 8)
    assert batch["input_ids"].tolist() == [[1, 31, 33, 28, 11, 19, 2, 0], [1, 31, 21, 2, 0, 0, 0, 0]]
    out = TokenDropping(ratio=0.5, shared_across_batch=False)(**batch, generator=torch.Generator().manual_seed(0))
    assert out.ids_keep.tolist() == [[6, 0, 2, 3], [3, 0, 4, 5]]  # [CLS] and [SEP] kept, padding may be kept too
    assert out.labels.tolist() == [[-100, 31, -100, -100, 11, 19, -100, -100], [-100, 31, 21] + [-100] * 5]
    assert torch.equal(out.input_ids, batch["input_ids"]), "dropping removes tokens by ids_keep, it never rewrites them"


def test_pinned_shared_across_batch() -> None:
    batch = captions([5, 2], 8)
    out = TokenDropping(ratio=0.5, shared_across_batch=True)(**batch, generator=torch.Generator().manual_seed(0))
    assert out.ids_keep.tolist() == [[2, 3, 4, 6], [2, 3, 4, 6]]
    # dropped padding and special tokens are not predicted
    assert out.mask.int().tolist() == [[0, 1, 0, 0, 0, 1, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0]]


def test_builds_from_registry_defaults(registry) -> None:
    masker = registry.build("text_masking", {"type": "drop"})
    assert (masker.ratio, masker.shared_across_batch) == (0.75, False)
