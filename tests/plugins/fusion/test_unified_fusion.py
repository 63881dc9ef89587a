"""Fusion ``unified`` (M3AE): layouts, padding, sizes vs hand counts, cost follows visible tokens."""

from __future__ import annotations

import pytest
import torch
from fusion_helpers import B, N, T, encodings, make_context, with_padding_changed

from framework.types import MaskingOutput, TextMaskingOutput
from framework_plugins import encoders

TINY = {"type": "unified", "width": 32, "depth": 2, "heads": 2}


def build(context, **params):
    return context.registry.build("fusion", {**TINY, **params}, context)


def transformer_params(d: int, depth: int) -> int:
    """Hand count: pre-norm blocks (2 LayerNorms, qkv, out-proj, 4x MLP) and the final LayerNorm."""
    block = 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    return depth * block + 2 * d


def test_streams_are_split_back_in_input_layouts(context):
    fusion = build(context)
    image, text = encodings()
    out = fusion(image, text)
    assert out.image.shape == (B, 1 + N, 32) and out.text.shape == (B, T, 32)
    torch.testing.assert_close(out.pooled, out.image[:, 0])
    out.pooled.square().sum().backward()
    assert text.tokens.grad.abs().sum() > 0  # the [CLS] attends to text


def test_text_padding_is_excluded_from_attention(context):
    fusion = build(context).eval()
    image, text = encodings()
    out, changed = fusion(image, text), fusion(image, with_padding_changed(text))
    torch.testing.assert_close(out.image, changed.image)
    real = text.attention_mask.bool()
    torch.testing.assert_close(out.text[real], changed.text[real])


@pytest.mark.parametrize(
    "size,width,depth", [("small", 384, 12), ("base", 768, 12), ("large", 1024, 24)]
)
def test_size_presets_match_hand_counts(registry, size, width, depth):
    context = make_context(registry, image_width=width, text_width=width)
    with torch.device("meta"):
        fusion = registry.build("fusion", {"type": "unified", "size": size}, context)
    assert sum(p.numel() for p in fusion.parameters()) == transformer_params(width, depth)


def test_other_widths_are_projected(registry):
    fusion = build(make_context(registry, image_width=24, text_width=16))
    image, text = encodings(image_width=24, text_width=16)
    out = fusion(image, text)
    assert out.image.shape == (B, 1 + N, 32) and out.text.shape == (B, T, 32)


def test_m3ae_sequence_is_kept_image_plus_kept_text_plus_cls(registry):
    """patch_embed + token_embed + unified with 75% of both modalities dropped: the blocks see
    1 + 4 + 3 tokens for 16 patches and 12 text tokens."""
    registry.register_plugin(encoders, name="encoders", distribution="framework==test")
    context = make_context(registry, image_width=32, text_width=32)
    context.values.update(image_size=32, max_text_len=12)
    image_encoder = registry.build(
        "image_encoder", {"type": "patch_embed", "width": 32, "patch_size": 8}, context
    )
    text_encoder = registry.build("text_encoder", {"type": "token_embed", "width": 32}, context)
    fusion = build(context)
    ids_image = torch.arange(16).expand(B, -1)[:, [3, 7, 8, 15]]
    ids_text = torch.arange(12).expand(B, -1)[:, [0, 5, 9]]
    image_mask = MaskingOutput(
        torch.ones(B, 16, dtype=torch.bool).scatter(1, ids_image, False), ids_image
    )
    text_ids = torch.randint(0, 40, (B, 12))
    text_mask = TextMaskingOutput(
        text_ids,
        text_ids,
        torch.ones(B, 12, dtype=torch.bool).scatter(1, ids_text, False),
        ids_text,
    )
    lengths = []
    fusion.blocks[0].register_forward_pre_hook(
        lambda module, args: lengths.append(args[0].shape[1])
    )
    out = fusion(
        image_encoder(torch.randn(B, 3, 32, 32), image_mask),
        text_encoder(text_ids, torch.ones(B, 12, dtype=torch.long), text_mask),
    )
    assert lengths == [1 + 4 + 3]
    assert out.image.shape == (B, 1 + 4, 32) and out.text.shape == (B, 3, 32)
    out.pooled.square().sum().backward()
    assert all(
        torch.isfinite(p.grad).all()
        for p in [*image_encoder.parameters(), *text_encoder.parameters()]
    )
