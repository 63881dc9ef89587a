"""Fusion ``bert_concat`` (MAMO): BERT layers over [image; text], checkpoint layers, padding, pooling."""

from __future__ import annotations

import torch
from fusion_helpers import B, N, T, encodings, with_padding_changed
from transformers import BertConfig, BertModel

TINY = {"type": "bert_concat", "depth": 2, "heads": 2, "intermediate": 48, "dropout": 0.0}


def build(context, **params):
    return context.registry.build("fusion", {**TINY, **params}, context)


def bert_layer_params(d: int, inter: int) -> int:
    """Hand count of one post-norm BERT layer: q,k,v,o + LayerNorm, MLP + LayerNorm."""
    return (4 * d * d + 4 * d + 2 * d) + (d * inter + inter) + (inter * d + d) + 2 * d


def test_streams_split_back_and_pool_the_chosen_cls(context):
    fusion = build(context)
    image, text = encodings()
    out = fusion(image, text)
    assert out.image.shape == (B, 1 + N, 32) and out.text.shape == (B, T, 32)
    torch.testing.assert_close(out.pooled, out.text[:, 0])
    by_image = build(context, pool="image")(image, text)
    torch.testing.assert_close(by_image.pooled, by_image.image[:, 0])
    out.pooled.square().sum().backward()
    assert image.tokens.grad.abs().sum() > 0 and text.tokens.grad.abs().sum() > 0
    assert sum(p.numel() for p in fusion.parameters()) == 2 * bert_layer_params(32, 48)


def test_image_tokens_attend_text_and_padding_is_not_attended(context):
    fusion = build(context).eval()
    image, text = encodings()
    base = fusion(image, text)
    changed = fusion(image, with_padding_changed(text))
    real = text.attention_mask.bool()
    torch.testing.assert_close(base.text[real], changed.text[real])
    torch.testing.assert_close(base.image, changed.image)
    other_text = type(text)(text.tokens + 1.0, text.attention_mask)
    assert not torch.allclose(fusion(image, other_text).image, base.image)  # joint attention, not cross-only


def test_checkpoint_upper_layers_run_as_in_bert(context, tmp_path):
    """Layers [2,4) of a saved 4-layer BERT: every weight loads, and the fusion equals those
    transformers layers applied to the concatenated sequence with text padding masked."""
    config = BertConfig(vocab_size=40, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=48, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    reference = BertModel(config, add_pooling_layer=False).eval()
    reference.save_pretrained(tmp_path)
    fusion = build(context, checkpoint=str(tmp_path), layers=[2, 4]).eval()
    for layer, source in zip(fusion.layers, reference.encoder.layer[2:4]):
        for (name, p), q in zip(layer.state_dict().items(), source.state_dict().values()):
            torch.testing.assert_close(p, q, msg=name)
    image, text = encodings()
    x = torch.cat([image.tokens, text.tokens], 1)
    valid = torch.cat([torch.ones(B, 1 + N, dtype=torch.long), text.attention_mask], 1)
    mask = valid.bool()[:, None, None, :]  # SDPA's boolean form (True: attend), not the fusion's additive one
    for layer in reference.encoder.layer[2:4]:
        x = layer(x, mask)
    out = fusion(image, text)
    torch.testing.assert_close(out.image, x[:, : 1 + N], atol=1e-5, rtol=1e-4)
    real = text.attention_mask.bool()
    torch.testing.assert_close(out.text[real], x[:, 1 + N:][real], atol=1e-5, rtol=1e-4)
