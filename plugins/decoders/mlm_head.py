"""Head ``bert_mlm``: BERT's and RoBERTa's masked-LM head (Devlin et al. 2019; Liu et al. 2019).

``dense -> GELU -> LayerNorm -> decoder + bias``, the decoder tied to the text encoder's
word embeddings: the same tensor, so it costs only the transform and a per-token bias
(0.62M on BERT-base instead of 23.4M for an untied vocabulary projection). This is the
``cls.predictions`` of ``BertForMaskedLM`` and the ``lm_head`` of ``RobertaForMaskedLM``,
which ALBEF's model reuses (and VLMAE and MAMO after it). The transform and the bias load
from a local ``save_pretrained`` directory of such a model (bert-base-uncased and
roberta-base ship them): by default the text encoder's own checkpoint, so a recipe names
BERT once; the decoder weight is the text encoder's embeddings, loaded with the encoder.
A randomly initialised text encoder gives a randomly initialised head.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForMaskedLM

from framework.api import SAFE_PRETRAINED, BuildContext, ComponentSpec, refuse_remote_code

SOURCES = {"bert": ("cls.predictions", "transform.dense", "transform.LayerNorm"),
           "roberta": ("lm_head", "dense", "layer_norm")}
"""Per architecture: the head's module in ``*ForMaskedLM`` and its dense / LayerNorm names."""
TEXT_ENCODER = "text_encoder"
"""``checkpoint`` value meaning: the directory the text encoder was loaded from, if any."""


class BertMLMHead(nn.Module):
    """``logits = decoder(LayerNorm(GELU(dense(x)))) + bias``, parameter names as BERT's head."""

    def __init__(self, in_dim: int, embeddings: Optional[nn.Embedding], vocab_size: int, *,
                 width: int, eps: float, tie: bool) -> None:
        super().__init__()
        self.dense = nn.Linear(in_dim, width)
        self.act = nn.GELU()  # exact erf GELU, BERT's "gelu"
        self.layer_norm = nn.LayerNorm(width, eps=eps)
        self.decoder = nn.Linear(width, vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        nn.init.normal_(self.dense.weight, std=0.02)  # BERT's initializer_range
        nn.init.zeros_(self.dense.bias)
        self.tied = tie
        if tie:
            self.decoder.weight = embeddings.weight  # one tensor: gradients of both uses add up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., in_dim] -> logits [..., vocab]."""
        return self.decoder(self.layer_norm(self.act(self.dense(x)))) + self.bias

    def load_pretrained(self, checkpoint: str) -> None:
        """Copy dense, LayerNorm and bias (and an untied decoder) from a local *ForMaskedLM checkpoint."""
        path = Path(checkpoint)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"MLM head checkpoint '{checkpoint}' is not a local transformers directory (no "
                                    "config.json); name the directory of bert-base-uncased / roberta-base")
        refuse_remote_code(path, "MLM head checkpoint")
        arch = AutoConfig.from_pretrained(path, **SAFE_PRETRAINED).model_type
        if arch not in SOURCES:
            raise ValueError(f"MLM head checkpoint '{checkpoint}' holds a '{arch}' model; expected one of "
                             f"{sorted(SOURCES)}")
        model, info = AutoModelForMaskedLM.from_pretrained(path, **SAFE_PRETRAINED, output_loading_info=True)
        module, dense, norm = SOURCES[arch]
        missing = [k for k in info["missing_keys"] if k.startswith(module + ".") and not k.endswith("decoder.weight")]
        if missing:
            raise ValueError(f"checkpoint '{checkpoint}' has no trained MLM head ({missing}); it was saved without one "
                             f"(e.g. from {arch.capitalize()}Model): give a *ForMaskedLM checkpoint or checkpoint null")
        source = model.get_submodule(module)
        if source.bias.shape != self.bias.shape or source.get_submodule(dense).weight.shape != self.dense.weight.shape:
            raise ValueError(f"checkpoint '{checkpoint}''s MLM head ({tuple(source.decoder.weight.shape)}) does not "
                             f"fit this head ({tuple(self.decoder.weight.shape)} from {self.dense.in_features} "
                             "features)")
        with torch.no_grad():
            self.dense.load_state_dict(source.get_submodule(dense).state_dict())
            self.layer_norm.load_state_dict(source.get_submodule(norm).state_dict())
            self.bias.copy_(source.bias)
            if not self.tied:
                self.decoder.weight.copy_(source.decoder.weight)


def bert_mlm_head(*, tie: bool, checkpoint: Optional[str], eps: Optional[float], context: BuildContext) -> BertMLMHead:
    """Factory: reads ``in_dim``/``out_dim`` and, to tie, the text encoder's ``text_embeddings``."""
    embeddings = context.get("text_embeddings")
    vocab = context["out_dim"]
    if tie:
        if embeddings is None:
            raise ValueError("head 'bert_mlm' ties its decoder to the text encoder's word embeddings, but the text "
                             "encoder exposes none; set tie false or use a BERT/RoBERTa text encoder")
        if embeddings.weight.shape[0] < vocab:
            raise ValueError(f"the text encoder embeds {embeddings.weight.shape[0]} ids but the tokenizer has {vocab}; "
                             "the tokenizer must be the text checkpoint's")
        vocab = embeddings.weight.shape[0]  # a checkpoint may embed more rows than its tokenizer uses
    width = embeddings.weight.shape[1] if embeddings is not None else context["in_dim"]
    eps = eps if eps is not None else context.get("text_layer_norm_eps", 1e-12)
    head = BertMLMHead(context["in_dim"], embeddings, vocab, width=width, eps=eps, tie=tie)
    if checkpoint == TEXT_ENCODER:
        checkpoint = context.get("text_checkpoint")
    if checkpoint is not None and context.get("load_pretrained", True):  # False: shapes only, or a model file
        head.load_pretrained(checkpoint)
    return head


COMPONENTS = [ComponentSpec("head", "bert_mlm", bert_mlm_head, {
    "type": "object", "additionalProperties": False,
    "properties": {
        "tie": {"type": "boolean", "default": True,
                "description": "Decoder weight is the text encoder's word embeddings (BERT's weight tying)."},
        "checkpoint": {"type": ["string", "null"], "default": TEXT_ENCODER,
                       "description": "Local BertForMaskedLM / RobertaForMaskedLM directory whose cls.predictions / "
                                      "lm_head initialise the transform and bias; \"text_encoder\" = the text "
                                      "encoder's checkpoint (random init when it has none); null = random init."},
        "eps": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
                "description": "LayerNorm eps; null = the text encoder's (BERT 1e-12, RoBERTa 1e-5)."},
    },
}, "BERT/RoBERTa MLM head: dense, GELU, LayerNorm, decoder tied to the word embeddings, bias.")]
