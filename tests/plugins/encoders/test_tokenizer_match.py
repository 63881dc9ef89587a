"""A text checkpoint implies its tokenizer: other vocabularies or special tokens are refused."""

from __future__ import annotations

import pytest
from transformers import BertConfig, BertModel

from framework.assemble import tokenizer_context
from framework.registry import BuildContext, Registry
from framework_plugins import encoders
from framework_plugins.tokenizers.wordpiece import train_wordpiece

CAPTIONS = ["a red square on a blue field", "two green circles", "a small yellow triangle near a circle"]
OTHER = ["completely different words here", "nothing shared with the first captions", "zebra quartz"]


def checkpoint_with_tokenizer(tmp_path, tokenizer):
    """A tiny BERT whose embedding table is the size of ``tokenizer``, saved with it."""
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, pad_token_id=tokenizer.pad_token_id)
    BertModel(config, add_pooling_layer=False).save_pretrained(tmp_path)
    tokenizer.save_pretrained(str(tmp_path))
    return str(tmp_path)


def build(tokenizer, checkpoint):
    registry = Registry()
    registry.register_plugin(encoders, name="encoders", distribution="framework==test")
    context = BuildContext(registry, {"max_text_len": 8, **tokenizer_context(tokenizer)})
    return registry.build("text_encoder", {"type": "bert", "checkpoint": checkpoint}, context)


def test_the_checkpoints_own_tokenizer_is_accepted(tmp_path):
    tokenizer = train_wordpiece(CAPTIONS, vocab_size=60, min_frequency=1)
    assert build(tokenizer, checkpoint_with_tokenizer(tmp_path, tokenizer)).width == 16


def test_a_tokenizer_of_the_same_size_with_other_tokens_is_refused(tmp_path):
    own = train_wordpiece(OTHER, vocab_size=60, min_frequency=1)
    checkpoint = checkpoint_with_tokenizer(tmp_path, own)
    other = train_wordpiece(CAPTIONS, vocab_size=60, min_frequency=1)
    assert len(other) <= len(own)  # the old rule (only a larger vocabulary refused) let it through
    with pytest.raises(Exception, match="does not match text checkpoint.*vocabulary"):
        build(other, checkpoint)


def test_a_tokenizer_with_other_special_tokens_is_refused(tmp_path):
    own = train_wordpiece(CAPTIONS, vocab_size=60, min_frequency=1)
    checkpoint = checkpoint_with_tokenizer(tmp_path, own)
    changed = train_wordpiece(CAPTIONS, vocab_size=60, min_frequency=1)
    changed.mask_token = "[UNK]"  # same vocabulary, another id for [MASK]'s role
    with pytest.raises(Exception, match="special tokens"):
        build(changed, checkpoint)


def test_without_saved_tokenizer_sizes_and_padding_are_compared(tmp_path):
    tokenizer = train_wordpiece(CAPTIONS, vocab_size=60, min_frequency=1)
    BertModel(BertConfig(vocab_size=len(tokenizer) - 1, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=16, pad_token_id=5),
              add_pooling_layer=False).save_pretrained(tmp_path)
    with pytest.raises(Exception, match=r"ids but the checkpoint embeds only.*padding id"):
        build(tokenizer, str(tmp_path))
