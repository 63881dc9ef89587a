"""random_patches: matches MAE's reference masking, pinned seeded output, schema and errors."""

from __future__ import annotations

import jsonschema
import pytest
import torch

from framework_plugins.masking.random_patches import SCHEMA, RandomPatches


def mae_reference(noise: torch.Tensor, keep: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MAE's random_masking written out independently (He et al. 2022, official recipe)."""
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = torch.ones_like(noise)
    mask[:, :keep] = 0
    return ids_shuffle[:, :keep], ids_restore, torch.gather(mask, 1, ids_restore).bool()


def call(masker: RandomPatches, batch: int = 3, grid: tuple[int, int] = (4, 5), seed: int = 0):
    return masker(batch_size=batch, grid=grid, patch_size=8, generator=torch.Generator().manual_seed(seed),
                  device="cpu")


def test_matches_mae_reference() -> None:
    out = call(RandomPatches(ratio=0.75, shared_across_batch=False))
    noise = torch.rand(3, 20, generator=torch.Generator().manual_seed(0))
    keep, restore, mask = mae_reference(noise, int(20 * 0.25))
    assert torch.equal(out.ids_keep, keep) and torch.equal(out.ids_restore, restore) and torch.equal(out.mask, mask)


def test_pinned_seeded_output() -> None:
    out = call(RandomPatches(ratio=0.5, shared_across_batch=False), batch=2, grid=(2, 3))
    assert out.ids_keep.tolist() == [[2, 3, 4], [4, 5, 2]]
    assert out.mask.int().tolist() == [[1, 1, 0, 0, 0, 1], [1, 1, 0, 1, 0, 0]]
    shared = call(RandomPatches(ratio=0.5, shared_across_batch=True), batch=2, grid=(2, 3))
    assert shared.ids_keep.tolist() == [[2, 3, 4], [2, 3, 4]]


def test_ratio_zero_keeps_everything() -> None:
    out = call(RandomPatches(ratio=0.0, shared_across_batch=False))
    assert not out.mask.any() and out.ids_keep.shape == (3, 20)


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_bad_ratio_rejected(ratio: float) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"ratio": ratio}, SCHEMA)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        RandomPatches(ratio=ratio, shared_across_batch=False)


def test_builds_from_registry_defaults(registry) -> None:
    masker = registry.build("image_masking", {"type": "random_patches"})
    assert masker.ratio == 0.75 and masker.shared_across_batch is False
