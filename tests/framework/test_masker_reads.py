"""An image masker is called with the batch fields it declares in ``reads`` and no others."""

from __future__ import annotations

import pytest
import torch

from framework.context import ViewSpec, mask_view
from framework_plugins.masking.random_patches import RandomPatches
from framework_plugins.masking.region import RegionMasking

BATCH = {
    "image": torch.zeros(2, 3, 16, 16),
    "input_ids": torch.ones(2, 5, dtype=torch.long),
    "attention_mask": torch.ones(2, 5, dtype=torch.long),
    "special_tokens_mask": torch.zeros(2, 5, dtype=torch.long),
    "boxes": torch.tensor([[[0.0, 0.0, 8.0, 8.0]], [[8.0, 8.0, 16.0, 16.0]]]),
    "box_mask": torch.tensor([[True], [True]]),
}


class Recorder:
    """A masker that records its keyword arguments (and masks nothing)."""

    def __init__(self, reads: tuple[str, ...] | None = None) -> None:
        if reads is not None:
            self.reads = reads
        self.calls: list[set[str]] = []

    def __call__(self, **kwargs):
        self.calls.append(set(kwargs))
        return RandomPatches(ratio=0.5, shared_across_batch=False)(
            **{k: kwargs[k] for k in ("batch_size", "grid", "patch_size", "generator", "device")})


def draw(masker):
    return mask_view(ViewSpec("v", image=masker), BATCH, torch.Generator().manual_seed(0), 8, (2, 2), full=BATCH)[0]


def test_only_declared_fields_are_passed():
    base = {"batch_size", "grid", "patch_size", "generator", "device"}
    silent, reader = Recorder(), Recorder(reads=("boxes",))
    draw(silent), draw(reader)
    assert silent.calls == [base] and reader.calls == [base | {"boxes"}]


def test_region_masking_reads_the_boxes():
    assert RegionMasking.reads == ("boxes", "box_mask")
    mask = draw(RegionMasking(ratio=0.25)).mask.view(2, 2, 2)
    assert mask[0, 0, 0] and mask[1, 1, 1]  # each sample's box patch is masked first
    assert mask.sum().item() == 2


def test_a_field_that_is_not_gathered_over_ranks_is_refused():
    with pytest.raises(ValueError, match=r"reads \['label'\]; a masker may read only"):
        draw(Recorder(reads=("label",)))
