"""Head ``bert_mlm``: tied to the word embeddings, and equal to transformers' MLM heads when loaded."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, BertModel, RobertaConfig, RobertaForMaskedLM

from framework.registry import BuildContext, Registry
from framework_plugins import decoders, encoders

VOCAB, PAD, B, T = 50, 1, 2, 7
SIZES = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 48,
         "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    registry.register_plugin(encoders, name="encoders", distribution="framework==test")
    registry.register_plugin(decoders, name="decoders", distribution="framework==test")
    return registry


def encoder_and_head(registry: Registry, encoder: dict, head: dict):
    """Build a text encoder, then a head in the context assemble() gives it (embeddings, eps)."""
    context = BuildContext(registry, {"vocab_size": VOCAB, "pad_token_id": PAD, "max_text_len": T})
    text = registry.build("text_encoder", encoder, context)
    built = context.build("head", head, in_dim=text.width, out_dim=VOCAB, text_embeddings=text.input_embeddings(),
                          text_layer_norm_eps=text.layer_norm_eps, text_checkpoint=text.checkpoint)
    return text, built


def test_decoder_is_the_word_embedding_tensor_and_counts_once(registry):
    text, head = encoder_and_head(registry, {"type": "bert", "width": 32, "depth": 1, "heads": 2, "max_positions": 8},
                                  {"type": "bert_mlm"})
    embedding = text.input_embeddings().weight
    assert head.decoder.weight is embedding and head.decoder.weight.data_ptr() == embedding.data_ptr()
    both = torch.nn.ModuleList([text, head])
    transform = 32 * 32 + 32 + 2 * 32
    assert sum(p.numel() for p in both.parameters()) == sum(p.numel() for p in text.parameters()) + transform + VOCAB
    head(torch.randn(B, 3, 32)).sum().backward()
    assert embedding.grad is not None and embedding.grad.abs().sum() > 0  # the MLM loss trains the embeddings


@pytest.mark.parametrize("arch,named", [("bert", False), ("roberta", False), ("bert", True)])
def test_loaded_head_gives_transformers_masked_lm_logits(registry, tmp_path, arch, named):
    """By default the head loads from the text encoder's checkpoint; a named directory works too."""
    if arch == "bert":
        reference = BertForMaskedLM(BertConfig(vocab_size=VOCAB, pad_token_id=PAD, **SIZES))
    else:
        reference = RobertaForMaskedLM(RobertaConfig(vocab_size=VOCAB, pad_token_id=PAD, max_position_embeddings=T + 2,
                                                     type_vocab_size=1, **SIZES))
    with torch.no_grad():  # a trained-looking head, not its zero bias and unit LayerNorm
        for name, p in reference.named_parameters():
            if any(k in name for k in ("predictions", "lm_head")):
                p.add_(torch.randn_like(p) * 0.1)
    reference.eval().save_pretrained(tmp_path)
    text, head = encoder_and_head(registry, {"type": "bert", "arch": arch, "checkpoint": str(tmp_path), "dropout": 0.0},
                                  {"type": "bert_mlm", **({"checkpoint": str(tmp_path)} if named else {})})
    ids = torch.randint(PAD + 2, VOCAB, (B, T), generator=torch.Generator().manual_seed(0))
    attention = torch.ones(B, T, dtype=torch.long)
    expected = reference(input_ids=ids, attention_mask=attention).logits
    got = head(text.eval()(ids, attention).tokens)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert head.layer_norm.eps == reference.config.layer_norm_eps


def test_checkpoint_without_an_mlm_head_is_refused(registry, tmp_path):
    BertModel(BertConfig(vocab_size=VOCAB, pad_token_id=PAD, **SIZES),
              add_pooling_layer=False).save_pretrained(tmp_path)
    with pytest.raises(Exception, match="no trained MLM head"):
        encoder_and_head(registry, {"type": "bert", "checkpoint": str(tmp_path)},
                         {"type": "bert_mlm", "checkpoint": str(tmp_path)})


def test_tying_needs_embeddings_of_the_predicted_vocabulary(registry):
    context = BuildContext(registry, {})
    with pytest.raises(Exception, match="exposes none"):
        context.build("head", {"type": "bert_mlm"}, in_dim=32, out_dim=VOCAB)
    with pytest.raises(Exception, match="embeds 40 ids but the tokenizer has 50"):
        context.build("head", {"type": "bert_mlm"}, in_dim=32, out_dim=VOCAB,
                      text_embeddings=torch.nn.Embedding(40, 32))
    random = context.build("head", {"type": "bert_mlm", "tie": False}, in_dim=24, out_dim=VOCAB, text_checkpoint=None)
    assert torch.count_nonzero(random.bias) == 0  # no checkpoint anywhere: BERT's initialisation
    untied = context.build("head", {"type": "bert_mlm", "tie": False}, in_dim=24, out_dim=VOCAB)
    assert untied(torch.randn(B, 24)).shape == (B, VOCAB)
