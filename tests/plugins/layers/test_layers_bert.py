"""framework_plugins._layers.bert: masks, layer ranges, and BertCrossLayer against BertLayer."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertLayer

from framework_plugins._layers.bert import (
    BertCrossLayer,
    additive_mask,
    layer_config,
    layer_range,
)


def test_additive_mask_zero_for_real_tokens_min_for_padding():
    mask = additive_mask(torch.tensor([[1, 0]]), torch.float32)
    assert (
        mask.shape == (1, 1, 1, 2)
        and mask[0, 0, 0, 0] == 0
        and mask[0, 0, 0, 1] == torch.finfo(torch.float32).min
    )
    assert additive_mask(None, torch.float32) is None


def test_layer_range():
    assert layer_range(None, 4) == (0, 4) and layer_range([1, 3], 4) == (1, 3)
    with pytest.raises(ValueError, match="layers"):
        layer_range([2, 2], 4)


def test_cross_layer_holds_a_bert_layer_and_adds_cross_attention():
    """A BertLayer's weights load into BertCrossLayer; with the cross-attention output dense
    zeroed (and its LayerNorm at identity init), both compute the same function."""
    config = BertConfig(
        hidden_size=16,
        num_attention_heads=2,
        intermediate_size=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    bert = BertLayer(config).eval()
    layer = BertCrossLayer(
        layer_config("bert", width=16, heads=2, intermediate=32, dropout=0.0)
    ).eval()
    result = layer.load_state_dict(bert.state_dict(), strict=False)
    assert not result.unexpected_keys and all(
        k.startswith("crossattention.") for k in result.missing_keys
    )
    torch.nn.init.zeros_(layer.crossattention.output.dense.weight)
    torch.nn.init.zeros_(layer.crossattention.output.dense.bias)
    x, context = torch.randn(2, 5, 16), torch.randn(2, 3, 16)
    mask = additive_mask(torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]), x.dtype)
    torch.testing.assert_close(layer(x, mask, context, None), bert(x, mask), atol=1e-5, rtol=1e-4)
