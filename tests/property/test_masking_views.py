"""Masking plans as views: "one modality at a time" (MaskVLM) never masks both modalities in a view."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from masking_strategies import MASK, PATCH, SPECIAL_IDS, VOCAB, captions, seeds

from framework.context import ViewSpec, mask_view
from framework.registry import BuildContext, Registry
from framework_plugins import masking

REGISTRY = Registry()
REGISTRY.register_plugin(masking, name="masking", distribution="framework==test")
CONTEXT = BuildContext(REGISTRY, {"vocab_size": VOCAB, "mask_token_id": MASK, "special_token_ids": SPECIAL_IDS})
ratio = st.floats(0.01, 0.99)
image_configs = st.one_of(
    st.builds(lambda r: {"type": "random_patches", "ratio": r}, ratio),
    st.builds(lambda r, s: {"type": "random_patches", "ratio": r, "shared_across_batch": s}, ratio, st.booleans()),
    st.builds(lambda r: {"type": "block", "ratio": r, "block_size": PATCH}, ratio),
    st.builds(lambda r: {"type": "region", "ratio": r}, ratio),
)
text_configs = st.one_of(*(st.builds(lambda r, t=t: {"type": t, "ratio": r}, ratio)
                           for t in ("mlm", "mask_only", "drop")))


def build_views(plan: dict) -> dict[str, ViewSpec]:
    """Views from a recipe's ``views`` section, built through the registry as the assembler does."""
    return {name: ViewSpec(name,
                           CONTEXT.build("image_masking", spec["image"]) if "image" in spec else None,
                           CONTEXT.build("text_masking", spec["text"]) if "text" in spec else None)
            for name, spec in plan.items()}


@settings(max_examples=50, deadline=None)
@given(image=image_configs, text=text_configs, batch=captions(), grid=st.tuples(st.integers(1, 6), st.integers(1, 6)),
       seed=seeds)
def test_one_modality_at_a_time(image, text, batch, grid, seed) -> None:
    plan = {"full": {}, "masked_image": {"image": image}, "masked_text": {"text": text}}
    size = batch["input_ids"].shape[0]
    batch = {**batch, "image": torch.zeros(size, 3, grid[0] * PATCH, grid[1] * PATCH)}
    generator = torch.Generator().manual_seed(seed)
    masked = {}
    for name, view in build_views(plan).items():
        image_mask, text_mask = mask_view(view, batch, generator, PATCH, grid)
        image_masked = image_mask is not None and bool(image_mask.mask.any())
        text_masked = text_mask is not None and bool(text_mask.mask.any())
        assert not (image_masked and text_masked), f"view '{name}' masks both modalities"
        masked[name] = (image_masked, text_masked)
    assert masked["full"] == (False, False)
    assert masked["masked_image"] == (grid[0] * grid[1] > 0, False)
    has_text = bool((batch["attention_mask"].bool() & ~batch["special_tokens_mask"].bool()).any())
    assert masked["masked_text"] == (False, has_text)
