"""Fusion ``cross_attention`` (ALBEF): shapes, padding, parameter count, BERT checkpoint layers."""

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
from transformers import BertConfig, BertModel

TINY = {"type": "cross_attention", "depth": 2, "heads": 2, "intermediate": 48, "dropout": 0.0}


def build(context, **params):
    return context.registry.build("fusion", {**TINY, **params}, context)


def test_shapes_pooled_and_untouched_image_stream(context):
    fusion = build(context)
    image, text = encodings()
    out = fusion(image, text)
    assert out.text.shape == (B, T, 32) and out.image is image.tokens
    torch.testing.assert_close(out.pooled, out.text[:, 0])
    assert fusion.width == fusion.text_width == 32 and fusion.image_width == 32
    out.pooled.square().sum().backward()
    assert torch.isfinite(image.tokens.grad).all() and image.tokens.grad.abs().sum() > 0


def test_parameter_count_matches_hand_count(context):
    assert sum(p.numel() for p in build(context).parameters()) == 2 * cross_layer_params(32, 48)


def test_padded_text_positions_are_not_attended(context):
    fusion = build(context).eval()
    image, text = encodings()
    real = text.attention_mask.bool()
    torch.testing.assert_close(
        fusion(image, text).text[real], fusion(image, with_padding_changed(text)).text[real]
    )


def test_other_widths_get_linear_projections(registry):
    fusion = build(make_context(registry, image_width=24, text_width=16), width=32)
    image, text = encodings(image_width=24, text_width=16)
    out = fusion(image, text)
    assert out.text.shape == (B, T, 32) and out.image.shape == (B, 1 + N, 24)
    assert isinstance(fusion.text_proj, torch.nn.Linear) and isinstance(
        fusion.image_proj, torch.nn.Linear
    )


def test_checkpoint_layers_initialise_the_fusion(context, tmp_path):
    """Layers [2,4) of a saved 4-layer BERT: with the (random) cross-attention output silenced,
    the fusion maps the reference's hidden state 2 to its hidden state 4."""
    config = BertConfig(
        vocab_size=40,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=48,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    reference = BertModel(config, add_pooling_layer=False).eval()
    reference.save_pretrained(tmp_path)
    fusion = build(context, checkpoint=str(tmp_path), layers=[2, 4]).eval()
    assert len(fusion.layers) == 2
    for layer, source in zip(fusion.layers, reference.encoder.layer[2:4]):
        torch.testing.assert_close(
            layer.attention.self.query.weight, source.attention.self.query.weight
        )
        torch.nn.init.zeros_(layer.crossattention.output.dense.weight)
        torch.nn.init.zeros_(layer.crossattention.output.dense.bias)
    image, text = encodings()
    ids = torch.randint(1, 40, (B, T))
    hidden = reference(
        input_ids=ids, attention_mask=text.attention_mask, output_hidden_states=True
    ).hidden_states
    text = type(text)(hidden[2], text.attention_mask)
    real = text.attention_mask.bool()
    torch.testing.assert_close(
        fusion(image, text).text[real], hidden[4][real], atol=1e-5, rtol=1e-4
    )


def test_layer_range_outside_the_stack_is_refused(context):
    with pytest.raises(ValueError, match="layers"):
        build(context, layers=[1, 5])
