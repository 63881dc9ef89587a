"""Invalid masking params are refused: by the component's schema or with a clear error."""

from __future__ import annotations

import jsonschema
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.registry import Registry
from framework_plugins import masking
from framework_plugins.masking._common import check_ratio
from framework_plugins.masking.block import BlockMasking

REGISTRY = Registry()
REGISTRY.register_plugin(masking, name="masking", distribution="framework==test")
SPECS = REGISTRY.specs("image_masking") + REGISTRY.specs("text_masking")
bad_ratios = st.floats(allow_nan=False, allow_infinity=False).filter(lambda r: not 0.0 <= r < 1.0)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.kind}:{s.name}")
def test_schema_is_strict_and_documented(spec) -> None:
    jsonschema.Draft202012Validator.check_schema(spec.schema)
    assert spec.schema["additionalProperties"] is False
    assert all("description" in prop for prop in spec.schema["properties"].values())
    jsonschema.validate({}, spec.schema)  # every param has a default
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"no_such_param": 1}, spec.schema)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.kind}:{s.name}")
@settings(max_examples=25, deadline=None)
@given(ratio=bad_ratios)
def test_ratio_outside_unit_interval_rejected(spec, ratio) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"ratio": ratio}, spec.schema)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
        check_ratio(ratio)


def call_block(block_size: int, patch_size: int, grid: tuple[int, int]):
    masker = BlockMasking(ratio=0.5, block_size=block_size, shared_across_batch=False)
    return masker(batch_size=1, grid=grid, patch_size=patch_size, generator=torch.Generator(), device="cpu")


@settings(max_examples=50, deadline=None)
@given(patch=st.integers(2, 16), side=st.integers(1, 8), data=st.data())
def test_block_larger_than_image_rejected(patch, side, data) -> None:
    block = patch * data.draw(st.integers(side + 1, side + 4))
    with pytest.raises(ValueError, match="larger than the image side"):
        call_block(block, patch, (side, side + data.draw(st.integers(0, 3))))


@settings(max_examples=50, deadline=None)
@given(patch=st.integers(2, 16), data=st.data())
def test_block_not_multiple_of_patch_rejected(patch, data) -> None:
    block = data.draw(st.integers(1, 8 * patch).filter(lambda b: b % patch))
    with pytest.raises(ValueError, match="not a multiple of the encoder's patch size"):
        call_block(block, patch, (8, 8))


@settings(max_examples=25, deadline=None)
@given(patch=st.integers(2, 32), data=st.data())
def test_patch_size_not_dividing_image_rejected(patch, data) -> None:
    """The image encoder fixes the patch grid the maskers see; it refuses a ragged grid."""
    from framework_plugins.encoders.vit import ViTEncoder

    image_size = data.draw(st.integers(patch, 16 * patch).filter(lambda s: s % patch))
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        ViTEncoder(width=16, depth=1, heads=1, patch_size=patch, mlp_ratio=1.0, image_size=image_size,
                   mask_tokens="input")
