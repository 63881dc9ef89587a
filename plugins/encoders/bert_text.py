"""Text encoder ``bert``: a transformers BertModel / RobertaModel, or a range of its layers.

ALBEF-style models (VLMAE, MAMO) encode text with layers [0,6) of BERT-base and fuse with
layers [6,12); MaskVLM encodes text with all of RoBERTa-base. The model is built from a
config (random init) or from a local ``save_pretrained`` directory, and returns every token
feature ([CLS]/<s> first). The pooler is not built: nothing here reads it, and unused
parameters would receive no gradient.

Token-dropping text masks (``mask.ids_keep``) keep only those positions; they keep their
original position ids, so dropping changes what is encoded, not where tokens sit.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn
from transformers import BertModel, RobertaModel

from framework.api import ComponentSpec, TextEncoding, TextMaskingOutput

from .._layers.bert import ARCHS, bert_config, checkpoint_model, layer_range, stack_properties
from ._tokenizer_match import check_tokenizer


class BertTextEncoder(nn.Module):
    """A BERT/RoBERTa model whose encoder keeps only layers ``[start, end)``."""

    def __init__(self, model: nn.Module, start: int, end: int) -> None:
        super().__init__()
        model.encoder.layer = model.encoder.layer[start:end]
        model.config.num_hidden_layers = end - start
        self.model = model
        self.width = model.config.hidden_size
        self.layer_norm_eps = model.config.layer_norm_eps
        # RoBERTa numbers real positions from pad_token_id + 1; BERT from 0.
        self.position_offset = (
            model.config.pad_token_id + 1 if model.config.model_type == "roberta" else 0
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        mask: Optional[TextMaskingOutput] = None,
    ) -> TextEncoding:
        """input_ids, attention_mask [B,T] -> tokens [B,T',D] (T' = kept count for dropping masks)."""
        position_ids = None
        if mask is not None and mask.ids_keep is not None:
            input_ids = torch.gather(input_ids, 1, mask.ids_keep)  # [B,K]
            attention_mask = torch.gather(attention_mask, 1, mask.ids_keep)  # [B,K]
            position_ids = mask.ids_keep + self.position_offset  # [B,K] original positions
        out = self.model(
            input_ids=input_ids, attention_mask=self._prepared_mask(attention_mask), position_ids=position_ids
        )
        return TextEncoding(out.last_hidden_state, attention_mask, mask)

    def transformers_export(self) -> nn.Module:
        """The transformers model this encoder runs (layers ``[start, end)`` only, its config
        saying so): ``save_pretrained`` of it loads with ``AutoModel.from_pretrained`` and
        gives this encoder's unmasked tokens as ``last_hidden_state``."""
        return self.model

    def input_embeddings(self) -> nn.Embedding:
        """The word-embedding table (an MLM head's decoder ties its weight to it)."""
        return self.model.get_input_embeddings()

    def _prepared_mask(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """The padding mask [B,T] as transformers' SDPA attention takes it, [B,1,1,T] bool
        (True: attend). Given a 2-D mask, transformers first asks the host whether it has
        any padding at all, a device sync on every step."""
        if self.model.config._attn_implementation != "sdpa":
            return attention_mask
        return attention_mask.bool()[:, None, None, :]


SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "arch": {
            "enum": sorted(ARCHS),
            "default": "bert",
            "description": "transformers architecture",
        },
        "width": {
            "type": "integer",
            "minimum": 1,
            "default": 768,
            "description": "hidden size (ignored with a checkpoint)",
        },
        **stack_properties(depth=12, layers_example="[0, 6] for ALBEF's text encoder",
                           checkpoint_use="to load (sizes and vocabulary come from it)"),
        "max_positions": {
            "type": "integer",
            "minimum": 1,
            "default": 512,
            "description": "longest text in tokens (ignored with a checkpoint)",
        },
    },
}


def build_bert(
    *,
    arch: str,
    width: int,
    depth: int,
    heads: int,
    intermediate: Optional[int],
    max_positions: int,
    dropout: float,
    layers: Optional[list[int]],
    checkpoint: Optional[str],
    context: Any,
) -> BertTextEncoder:
    config = bert_config(  # the recipe's sizes; with a checkpoint, used only where it is not read and is gone
        arch,
        vocab_size=context["vocab_size"],
        width=width,
        depth=max(depth, layers[1]) if checkpoint is not None and layers else depth,  # a stand-in holds `layers`
        heads=heads,
        intermediate=intermediate,
        max_positions=max_positions,
        pad_token_id=context["pad_token_id"],
        dropout=dropout,
    )
    if checkpoint is None:
        model = (BertModel if arch == "bert" else RobertaModel)(config, add_pooling_layer=False)
    else:
        _, model = checkpoint_model(checkpoint, arch, dropout, context, default=config)
        check_tokenizer(checkpoint, model.config, context)
    text_len = context.get("max_text_len")
    if text_len is not None and model.config.max_position_embeddings < text_len + (2 if arch == "roberta" else 0):
        raise ValueError(f"the text encoder has {model.config.max_position_embeddings} positions but captions are "
                         f"{text_len} tokens (data.max_text_len); raise max_positions or lower data.max_text_len")
    start, end = layer_range(layers, model.config.num_hidden_layers)
    encoder = BertTextEncoder(model, start, end)
    encoder.checkpoint = checkpoint  # where heads tied to this encoder find their own weights (bert_mlm)
    return encoder


COMPONENTS = [
    ComponentSpec("text_encoder", "bert", build_bert, SCHEMA, __doc__.strip().splitlines()[0])
]
