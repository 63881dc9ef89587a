"""Fusion ``two_stream`` (MaskVLM cross-modality encoders): streams, pooling, padding, sizes."""

from __future__ import annotations

import pytest
import torch
from fusion_helpers import (
    B,
    N,
    T,
    cross_layer_params,
    encodings,
    make_context,
    with_padding_changed,
)

TINY = {"type": "two_stream", "depth": 2, "heads": 2, "dropout": 0.0}


def build(context, **params):
    return context.registry.build("fusion", {**TINY, **params}, context)


def test_both_streams_keep_their_layouts_and_pool_is_the_cls_product(context):
    fusion = build(context)
    image, text = encodings()
    out = fusion(image, text)
    assert out.image.shape == (B, 1 + N, 32) and out.text.shape == (B, T, 32)
    torch.testing.assert_close(out.pooled, out.image[:, 0] * out.text[:, 0])
    assert fusion.width == 32
    out.pooled.square().sum().backward()
    assert image.tokens.grad.abs().sum() > 0 and text.tokens.grad.abs().sum() > 0


def test_parameter_count_matches_hand_count(context):
    assert sum(p.numel() for p in build(context).parameters()) == 2 * 2 * cross_layer_params(
        32, 128
    )


def test_each_stream_reads_the_other_modality(context):
    fusion = build(context).eval()
    image, text = encodings()
    other_image, _ = encodings(seed=3)
    out, swapped = fusion(image, text), fusion(other_image, text)
    assert not torch.allclose(out.text, swapped.text)  # text stream attends to image tokens


def test_text_padding_is_ignored_by_both_streams(context):
    fusion = build(context).eval()
    image, text = encodings()
    out, changed = fusion(image, text), fusion(image, with_padding_changed(text))
    real = text.attention_mask.bool()
    torch.testing.assert_close(out.image, changed.image)
    torch.testing.assert_close(out.text[real], changed.text[real])


@pytest.mark.parametrize("pool,width", [("product", 16), ("concat", 40)])
def test_different_widths_are_projected(registry, pool, width):
    fusion = build(make_context(registry, image_width=24, text_width=16), pool=pool)
    image, text = encodings(image_width=24, text_width=16)
    out = fusion(image, text)
    assert out.image.shape == (B, 1 + N, 24) and out.text.shape == (B, T, 16)
    assert fusion.width == width and out.pooled.shape == (B, width)
    assert torch.isfinite(out.pooled).all()
