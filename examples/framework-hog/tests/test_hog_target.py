"""The HOG target against a per-pixel loop written straight from the MaskFeat recipe."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from framework.registry import BuildContext, default_registry
from framework_hog.hog import hog_cells, hog_patches


def reference_cells(image: torch.Tensor, cell: int, bins: int, eps: float) -> torch.Tensor:
    """[C,H,W] -> [C,bins,H/cell,W/cell], one pixel at a time in float64."""
    c, h, w = image.shape
    x = image.double()
    out = torch.zeros(c, bins, h // cell, w // cell, dtype=torch.float64)
    for ch in range(c):
        for i in range(h):
            for j in range(w):
                gx = x[ch, i, min(j + 1, w - 1)] - x[ch, i, max(j - 1, 0)]
                gy = x[ch, min(i + 1, h - 1), j] - x[ch, max(i - 1, 0), j]
                angle = math.atan2(gy, gx) % math.pi
                out[ch, min(int(angle / math.pi * bins), bins - 1), i // cell, j // cell] += math.hypot(gx, gy)
    return out / (out.norm(dim=1, keepdim=True) + eps)


def test_cells_match_the_pixel_loop():
    image = torch.rand(2, 3, 8, 12, generator=torch.Generator().manual_seed(0))
    got = hog_cells(image, cell_size=4, bins=9, eps=1e-6)
    assert got.shape == (2, 3, 9, 2, 3)
    for b in range(2):
        torch.testing.assert_close(got[b].double(), reference_cells(image[b], 4, 9, 1e-6), atol=1e-5, rtol=1e-5)


def test_patches_concatenate_their_cells_in_row_major_order():
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    cells = hog_cells(image, cell_size=4, bins=6, eps=1e-6)  # [1,3,6,4,4]
    patches = hog_patches(image, patch_size=8, cell_size=4, bins=6, eps=1e-6)  # [1,4,3·2·2·6]
    assert patches.shape == (1, 4, 72)
    # patch 1 is grid row 0, column 1: cells rows 0-1, columns 2-3
    expected = cells[0, :, :, 0:2, 2:4].permute(0, 2, 3, 1).reshape(-1)  # channel, cell row, cell col, bin
    torch.testing.assert_close(patches[0, 1], expected)


def test_dataset_normalisation_does_not_change_the_targets():
    image = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    mean = torch.tensor([0.48, 0.46, 0.41]).view(1, 3, 1, 1)
    std = torch.tensor([0.27, 0.26, 0.28]).view(1, 3, 1, 1)
    raw = hog_patches(image, patch_size=8, cell_size=8, bins=9, eps=1e-9)
    torch.testing.assert_close(hog_patches((image - mean) / std, patch_size=8, cell_size=8, bins=9, eps=1e-9), raw,
                               atol=1e-5, rtol=1e-4)


def test_histograms_are_unit_norm_and_orientation_lands_in_its_bin():
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 3, 8, 8)  # brightness grows left to right: angle 0
    cells = hog_cells(ramp, cell_size=8, bins=4, eps=1e-9)
    torch.testing.assert_close(cells[0, :, :, 0, 0], torch.tensor([[1.0, 0, 0, 0]] * 3))
    down = ramp.transpose(2, 3)  # grows top to bottom: angle π/2, bin 2 of 4
    assert hog_cells(down, cell_size=8, bins=4, eps=1e-9)[0, 0, :, 0, 0].argmax() == 2
    assert torch.equal(hog_cells(torch.zeros(1, 3, 8, 8), cell_size=4, bins=9, eps=1e-6), torch.zeros(1, 3, 9, 2, 2))


def test_target_component_builds_from_the_registry_with_maskfeat_defaults():
    registry = default_registry()
    spec = registry.get("target", "hog")
    assert spec.provider.startswith("framework-hog==")
    target = registry.build("target", {"type": "hog"}, BuildContext(registry, {"patch_size": 16}))
    assert (target.cell_size, target.bins, target.dim, target.loss_kind) == (8, 9, 108, "regression")
    images = torch.randn(2, 3, 32, 32, requires_grad=True)
    out = target(SimpleNamespace(batch={"image": images}), view=None)
    assert out.shape == (2, 4, 108) and not out.requires_grad


def test_cell_size_must_divide_the_patch_size():
    registry = default_registry()
    with pytest.raises(ValueError, match="cell_size 6 does not divide the encoder's patch size 16"):
        registry.build("target", {"type": "hog", "cell_size": 6}, BuildContext(registry, {"patch_size": 16}))
