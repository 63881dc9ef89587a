"""block and region image masking: pinned seeded outputs, geometry, errors."""

from __future__ import annotations

import pytest
import torch

from framework_plugins.masking.block import BlockMasking
from framework_plugins.masking.region import RegionMasking, patches_in_boxes


def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def test_block_pinned_and_whole_blocks() -> None:
    out = BlockMasking(ratio=0.5, block_size=16, shared_across_batch=False)(
        batch_size=2, grid=(4, 4), patch_size=8, generator=generator(), device="cpu")
    grids = out.mask.int().view(2, 4, 4)
    assert grids.tolist() == [[[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]],
                              [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]]]
    per_block = grids.view(2, 2, 2, 2, 2).sum(dim=(2, 4))  # [B, block rows, block cols] masked patches per 2x2 block
    assert set(per_block.flatten().tolist()) <= {0, 4} and (per_block.sum(dim=(1, 2)) == 8).all()


def test_block_default_is_maskvlm(registry) -> None:
    masker = registry.build("image_masking", {"type": "block"})
    assert (masker.block_size, masker.ratio) == (32, 0.6)
    out = masker(batch_size=2, grid=(14, 14), patch_size=16, generator=generator(), device="cpu")
    assert out.mask.sum(1).tolist() == [118] * 2  # ceil(196 * 0.6) patches


def test_block_counts_whole_blocks_as_simmim(registry) -> None:
    """SimMIM's MaskGenerator: ceil(49 * 0.6) = 30 of the 49 2x2 blocks, 120 of 196 patches."""
    masker = registry.build("image_masking", {"type": "block", "count": "blocks"})
    out = masker(batch_size=2, grid=(14, 14), patch_size=16, generator=generator(), device="cpu")
    assert out.mask.sum(1).tolist() == [120] * 2 and out.ids_keep.shape == (2, 76)
    per_block = out.mask.int().view(2, 7, 2, 7, 2).sum(dim=(2, 4))  # [B, 7, 7] masked patches per block
    assert set(per_block.flatten().tolist()) == {0, 4}
    # a grid that is not a multiple of the block: cropped edge blocks, so the count varies
    out = masker(batch_size=64, grid=(3, 3), patch_size=16, generator=generator(), device="cpu")
    assert out.ids_keep is None and out.ids_masked.shape == (64, 4 + 2 + 2)  # 3 blocks: the largest three
    counts = set(out.mask.sum(1).tolist())
    assert counts <= {4 + 2 + 2, 4 + 2 + 1, 2 + 2 + 1} and len(counts) > 1
    assert torch.equal(out.mask.gather(1, out.ids_masked).sum(1), out.mask.sum(1))  # every masked one is listed


def test_block_errors_say_how_to_fix() -> None:
    masker = BlockMasking(ratio=0.5, block_size=24, shared_across_batch=False)
    with pytest.raises(ValueError, match="not a multiple of the encoder's patch size 16 px; use a multiple such as 32"):
        masker(batch_size=1, grid=(14, 14), patch_size=16, generator=generator(), device="cpu")
    with pytest.raises(ValueError, match="larger than the image side 16 px"):
        masker(batch_size=1, grid=(2, 4), patch_size=8, generator=generator(), device="cpu")


def test_patches_in_boxes_overlap_rule() -> None:
    boxes = torch.tensor([[[0.0, 0.0, 9.0, 8.0], [20.0, 20.0, 20.0, 30.0]]])  # second box has no area
    inside = patches_in_boxes(boxes, torch.tensor([[True, True]]), (3, 3), 8).view(3, 3)
    assert inside.int().tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 0]]
    assert not patches_in_boxes(boxes, torch.tensor([[False, False]]), (3, 3), 8).any()


def test_region_pinned_masks_box_first() -> None:
    boxes = torch.tensor([[[0.0, 0.0, 16.0, 16.0]], [[0.0, 0.0, 0.0, 0.0]]])
    out = RegionMasking(ratio=0.5)(batch_size=2, grid=(4, 4), patch_size=8, generator=generator(), device="cpu",
                                   boxes=boxes, box_mask=torch.tensor([[True], [False]]))
    assert out.mask.int().view(2, 4, 4).tolist() == [
        [[1, 1, 0, 0], [1, 1, 1, 1], [0, 1, 0, 0], [0, 0, 0, 1]],
        [[1, 1, 0, 0], [1, 1, 0, 1], [0, 1, 1, 0], [0, 0, 0, 1]]]
    assert out.mask[0].view(4, 4)[:2, :2].all()
