"""Text encoder ``bert``: BERT/RoBERTa configs, layer ranges, token dropping, local checkpoints."""

from __future__ import annotations

import pytest
import torch
from encoder_helpers import PAD, VOCAB, random_mask
from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

from framework.registry import ComponentBuildError
from framework.types import TextMaskingOutput

TINY = {
    "type": "bert",
    "width": 32,
    "depth": 2,
    "heads": 2,
    "intermediate": 48,
    "max_positions": 16,
    "dropout": 0.0,
}
B, T = 2, 10


def build(context, **params):
    return context.registry.build("text_encoder", {**TINY, **params}, context)


def bert_params(vocab: int, positions: int, types: int, d: int, inter: int, layers: int) -> int:
    """Hand count: word, position and type embeddings + LayerNorm, then BERT layers (no pooler)."""
    layer = (4 * d * d + 4 * d) + 2 * d + (d * inter + inter) + (inter * d + d) + 2 * d
    return vocab * d + positions * d + types * d + 2 * d + layers * layer


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tokens(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(3, VOCAB, (B, T), generator=torch.Generator().manual_seed(seed))
    attention = torch.ones(B, T, dtype=torch.long)
    attention[1, 7:] = 0
    return ids.masked_fill(attention == 0, PAD), attention


@pytest.mark.parametrize("arch,positions,types", [("bert", 16, 2), ("roberta", 16 + PAD + 1, 1)])
def test_tiny_parameter_count_matches_hand_count(context, arch, positions, types):
    encoder = build(context, arch=arch, layers=[0, 1])
    assert count(encoder) == bert_params(VOCAB, positions, types, 32, 48, layers=1)
    assert encoder.width == 32 and len(encoder.model.encoder.layer) == 1


@pytest.mark.parametrize(
    "arch,vocab,pad,expected", [("bert", 30522, 0, 108_891_648), ("roberta", 50265, 1, 124_055_040)]
)
def test_base_parameter_counts_without_pooler(registry, arch, vocab, pad, expected):
    """BERT-base 108.9M (109.5M with the pooler this encoder omits); RoBERTa-base 124.1M (124.6M)."""
    from framework.registry import BuildContext

    context = BuildContext(registry, {"vocab_size": vocab, "pad_token_id": pad})
    with torch.device("meta"):
        encoder = registry.build("text_encoder", {"type": "bert", "arch": arch}, context)
    positions, types = (512, 2) if arch == "bert" else (514, 1)
    assert count(encoder) == bert_params(vocab, positions, types, 768, 3072, 12) == expected


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_outputs_every_token_and_backpropagates(context, arch):
    encoder = build(context, arch=arch)
    ids, attention = tokens()
    out = encoder(ids, attention)
    assert out.tokens.shape == (B, T, 32) and torch.equal(out.attention_mask, attention)
    out.tokens.square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in encoder.parameters() if p.grad is not None)


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_token_dropping_equals_attending_only_to_kept_tokens(context, arch):
    """Kept tokens keep their positions: encoding K of T tokens equals encoding all T with the
    dropped ones removed from attention, read at the kept positions."""
    encoder = build(context, arch=arch).eval()
    ids = torch.randint(3, VOCAB, (B, T), generator=torch.Generator().manual_seed(1))
    drop = random_mask(B, T, keep=4)
    mask = TextMaskingOutput(
        ids, torch.full_like(ids, -100), drop.mask, drop.ids_keep, drop.ids_restore
    )
    out = encoder(ids, torch.ones(B, T, dtype=torch.long), mask)
    assert out.tokens.shape == (B, 4, 32) and out.attention_mask.shape == (B, 4)
    full = encoder(ids, (~drop.mask).long()).tokens
    torch.testing.assert_close(
        out.tokens, torch.stack([full[b, drop.ids_keep[b]] for b in range(B)])
    )


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_checkpoint_round_trip_and_layer_range(context, tmp_path, arch):
    config_class, model_class = (
        (BertConfig, BertModel) if arch == "bert" else (RobertaConfig, RobertaModel)
    )
    config = config_class(
        vocab_size=VOCAB + 5,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=20,
        pad_token_id=PAD,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    reference = model_class(config, add_pooling_layer=False).eval()
    reference.save_pretrained(tmp_path)
    ids, attention = tokens()
    hidden = reference(
        input_ids=ids, attention_mask=attention, output_hidden_states=True
    ).hidden_states
    whole = build(context, arch=arch, checkpoint=str(tmp_path)).eval()
    torch.testing.assert_close(whole(ids, attention).tokens, hidden[3])
    first_two = build(context, arch=arch, checkpoint=str(tmp_path), layers=[0, 2]).eval()
    torch.testing.assert_close(first_two(ids, attention).tokens, hidden[2])


def test_bad_checkpoints_and_ranges_are_refused(context, tmp_path):
    with pytest.raises(ComponentBuildError, match="config.json"):
        build(context, checkpoint=str(tmp_path))
    BertModel(
        BertConfig(
            vocab_size=VOCAB - 10,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=16,
        ),
        add_pooling_layer=False,
    ).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="arch is 'roberta'"):
        build(context, arch="roberta", checkpoint=str(tmp_path))
    with pytest.raises(ValueError, match="tokenizer has 50 ids"):
        build(context, checkpoint=str(tmp_path))
    with pytest.raises(ValueError, match="layers"):
        build(context, layers=[1, 3])
