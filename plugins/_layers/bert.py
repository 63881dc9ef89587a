"""BERT / RoBERTa pieces from transformers: configs, local checkpoints, a cross-attention layer.

ALBEF (and after it VLMAE and MAMO) splits BERT-base in two: layers [0,6) encode text and
layers [6,12) become the fusion encoder, each given a cross-attention sub-layer to the image
tokens. MaskVLM's cross-modality encoders use the same post-norm layer (its Fig. 7c).
transformers 5.24's ``BertLayer`` adds cross-attention only when ``is_decoder=True``, which
also makes its self-attention causal, so :class:`BertCrossLayer` composes the same
sub-modules (``BertAttention``, ``BertIntermediate``, ``BertOutput``) under the same
attribute names instead: a BERT layer's weights load into it unchanged and only the
cross-attention starts from random weights, as in ALBEF.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    BertConfig,
    BertModel,
    PretrainedConfig,
    RobertaConfig,
    RobertaModel,
)
from transformers.models.bert.modeling_bert import (
    BertAttention,
    BertIntermediate,
    BertOutput,
)

from framework.api import SAFE_PRETRAINED, record_config, refuse_remote_code, stored_config

ARCHS = {"bert": BertConfig, "roberta": RobertaConfig}
"""Supported text architectures and their config classes."""


def bert_config(
    arch: str,
    *,
    vocab_size: int,
    width: int,
    depth: int,
    heads: int,
    intermediate: Optional[int],
    max_positions: int,
    pad_token_id: int,
    dropout: float,
) -> PretrainedConfig:
    """A BERT-base-style config (RoBERTa: one token type, LayerNorm eps 1e-5, positions offset
    by ``pad_token_id + 1`` as in roberta-base, so ``max_positions`` texts still fit)."""
    roberta = arch == "roberta"
    config = ARCHS[arch](
        vocab_size=vocab_size,
        hidden_size=width,
        num_hidden_layers=depth,
        num_attention_heads=heads,
        intermediate_size=intermediate or 4 * width,
        max_position_embeddings=max_positions + (pad_token_id + 1 if roberta else 0),
        type_vocab_size=1 if roberta else 2,
        layer_norm_eps=1e-5 if roberta else 1e-12,
        pad_token_id=pad_token_id,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    config._attn_implementation = "sdpa"
    return config


def layer_config(
    arch: str, *, width: int, heads: int, intermediate: Optional[int], dropout: float
) -> PretrainedConfig:
    """Config for stand-alone layers (no embeddings, so vocabulary and positions are unused;
    3 ids hold RoBERTa's default bos/pad/eos, which transformers checks against the vocabulary)."""
    return bert_config(
        arch,
        vocab_size=3,
        width=width,
        depth=1,
        heads=heads,
        intermediate=intermediate,
        max_positions=1,
        pad_token_id=0,
        dropout=dropout,
    )


def load_local(checkpoint: str, arch: str, dropout: float) -> nn.Module:
    """``AutoModel.from_pretrained`` of a local directory (never the hub, never its code), without pooler."""
    path = Path(checkpoint)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"text checkpoint '{checkpoint}' is not a local transformers directory (no config.json); "
            "save one with model.save_pretrained(dir) and name that directory"
        )
    refuse_remote_code(path, "text checkpoint")
    config = AutoConfig.from_pretrained(path, **SAFE_PRETRAINED)
    if config.model_type != arch:
        raise ValueError(
            f"checkpoint '{checkpoint}' holds a '{config.model_type}' model but arch is '{arch}'; set arch to match"
        )
    return AutoModel.from_pretrained(
        path,
        **SAFE_PRETRAINED,
        add_pooling_layer=False,
        attn_implementation="sdpa",
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )


def checkpoint_model(checkpoint: str, arch: str, dropout: float, context: Any, *, need_model: bool = True,
                     default: Optional[PretrainedConfig] = None) -> tuple[PretrainedConfig, Optional[nn.Module]]:
    """The config and model of a local checkpoint, the config recorded in the build context
    (``framework.model_file``) so that a run's model file rebuilds it without the directory.

    Under ``load_pretrained=False`` no weights are read: the config comes from the model
    file's record, else the directory's ``config.json``, else ``default`` (the recipe's own
    sizes: a shapes-only build such as validation's needs no weights), and the model, when
    ``need_model``, is randomly initialised from it; the caller loads the real weights.
    """
    source = f"transformers:{checkpoint}"
    if context.get("load_pretrained", True):
        model = load_local(checkpoint, arch, dropout)
        record_config(context, source, model.config.to_dict())
        return model.config, model
    stored = stored_config(context, source)
    if stored is None and not (Path(checkpoint) / "config.json").is_file():
        if default is None:
            raise FileNotFoundError(
                f"text checkpoint '{checkpoint}' is gone and the model file records no config for it; "
                "build with load_pretrained=True or restore the directory")
        config = default  # the very object: callers tell it apart from a checkpoint's config
    else:
        if stored is None:
            refuse_remote_code(checkpoint, "text checkpoint")
            stored = AutoConfig.from_pretrained(checkpoint, **SAFE_PRETRAINED,
                                                hidden_dropout_prob=dropout,
                                                attention_probs_dropout_prob=dropout).to_dict()
        config = ARCHS[arch].from_dict(stored)
        config._attn_implementation = "sdpa"
    if not need_model:
        return config, None
    return config, (BertModel if arch == "bert" else RobertaModel)(config, add_pooling_layer=False)


def layer_range(layers: Optional[list[int]], depth: int) -> tuple[int, int]:
    """Validate ``[start, end)`` against a ``depth``-layer model; None means all layers."""
    if layers is None:
        return 0, depth
    start, end = layers
    if not 0 <= start < end <= depth:
        raise ValueError(
            f"layers {layers} is not a range [start, end) inside the model's {depth} layers"
        )
    return start, end


def additive_mask(valid: Optional[torch.Tensor], dtype: torch.dtype) -> Optional[torch.Tensor]:
    """[B,K] (1 = attend) -> additive [B,1,1,K] mask (0 or dtype min), valid for eager and SDPA."""
    if valid is None:
        return None
    return (1.0 - valid[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class BertCrossLayer(nn.Module):
    """Post-norm BERT layer with cross-attention: self-attn, cross-attn to ``context``, MLP.

    Attribute names equal ``BertLayer``'s, so BERT/RoBERTa layer weights load into it.
    """

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.crossattention = BertAttention(config, is_cross_attention=True)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)
        for module in self.modules():  # BERT's initialisation (transformers' _init_weights)
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=config.initializer_range)
                nn.init.zeros_(module.bias)

    def forward(
        self,
        x: torch.Tensor,
        mask: Optional[torch.Tensor],
        context: torch.Tensor,
        context_mask: Optional[torch.Tensor],
    ) -> torch.Tensor:
        """x [B,L,D], context [B,K,D]; masks are additive [B,1,1,*] (see :func:`additive_mask`)."""
        x = self.attention(x, mask)[0]
        x = self.crossattention(x, None, context, context_mask)[0]
        return self.output(self.intermediate(x), x)


def cross_layers(
    config: PretrainedConfig, start: int, end: int, pretrained: Optional[nn.Module]
) -> nn.ModuleList:
    """Layers ``[start, end)`` as :class:`BertCrossLayer`, copied from ``pretrained``'s
    encoder layers when given (cross-attention then stays randomly initialised)."""
    stack = nn.ModuleList(BertCrossLayer(config) for _ in range(start, end))
    if pretrained is not None:
        for layer, source in zip(stack, pretrained.encoder.layer[start:end]):
            result = layer.load_state_dict(source.state_dict(), strict=False)
            wrong = result.unexpected_keys + [
                k for k in result.missing_keys if not k.startswith("crossattention.")
            ]
            if wrong:
                raise ValueError(
                    f"checkpoint layer does not match a BERT layer with cross-attention: {wrong}"
                )
    return stack


def stack_properties(*, depth: int, layers_example: str, checkpoint_use: str) -> dict[str, Any]:
    """Schema properties of any component built from a stack of BERT layers (sizes are
    ignored when a checkpoint gives them)."""
    return {
        "layers": {"type": ["array", "null"], "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 2,
                   "default": None, "description": f"[start, end) of the stack's layers to use, e.g. {layers_example}; "
                                                   "null uses all"},
        "checkpoint": {"type": ["string", "null"], "default": None, "x-framework-path": "dir",
                       "description": f"local save_pretrained BERT/RoBERTa directory {checkpoint_use}; "
                                      "null = random init"},
        "depth": {"type": "integer", "minimum": 1, "default": depth,
                  "description": "layers of the full stack before `layers` selects some (ignored with a checkpoint)"},
        "heads": {"type": "integer", "minimum": 1, "default": 12,
                  "description": "attention heads (ignored with a checkpoint)"},
        "intermediate": {"type": ["integer", "null"], "minimum": 1, "default": None,
                         "description": "MLP hidden size; null = 4 x width (ignored with a checkpoint)"},
        "dropout": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.1,
                    "description": "hidden and attention dropout (BERT's 0.1)"},
    }
