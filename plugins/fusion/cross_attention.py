"""Fusion ``cross_attention``: ALBEF's multimodal encoder (Li et al. 2021), used by VLMAE and MAMO.

A text stream of post-norm BERT layers, each self-attention over the text (padding masked),
cross-attention to all image tokens, then the MLP. ``pooled`` is the fused text [CLS], which
ITM classifies (VLMAE Sec. 3.3); the image stream passes through unchanged. The layers can
start from layers ``[start, end)`` of a local BERT/RoBERTa checkpoint — ALBEF initialises
the fusion with BERT-base layers [6,12) — with cross-attention randomly initialised.

Widths: the fusion runs at ``width`` (default: the text width). Text or image tokens of
another width pass through a linear projection first (ALBEF's ``encoder_width`` plays that
role for image tokens); with equal widths there is no projection.
"""

from __future__ import annotations

from typing import Any, Optional

from torch import nn

from framework.api import ComponentSpec, FusedEncoding, ImageEncoding, TextEncoding

from .._layers.bert import (
    ARCHS,
    additive_mask,
    checkpoint_model,
    cross_layers,
    layer_config,
    layer_range,
    stack_properties,
)
from .._layers.projection import projection


class CrossAttentionFusion(nn.Module):
    """Text queries attend to image tokens through a stack of :class:`BertCrossLayer`."""

    def __init__(
        self, layers: nn.ModuleList, *, width: int, text_width: int, image_width: int
    ) -> None:
        super().__init__()
        self.text_proj = projection(text_width, width)
        self.image_proj = projection(image_width, width)
        self.layers = layers
        self.width = self.text_width = width
        self.image_width = image_width

    def forward(self, image: ImageEncoding, text: TextEncoding) -> FusedEncoding:
        """image tokens [B,1+N',Di], text tokens [B,T',Dt] -> fused text [B,T',D], pooled [B,D]."""
        x = self.text_proj(text.tokens)  # [B,T',D]
        context = self.image_proj(image.tokens)  # [B,1+N',D]
        mask = additive_mask(text.attention_mask, x.dtype)  # [B,1,1,T']
        for layer in self.layers:
            x = layer(x, mask, context, None)
        return FusedEncoding(image=image.tokens, text=x, pooled=x[:, 0])


SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "arch": {
            "enum": sorted(ARCHS),
            "default": "bert",
            "description": "layer flavour (LayerNorm eps) and checkpoint type",
        },
        "width": {
            "type": ["integer", "null"],
            "minimum": 1,
            "default": None,
            "description": "fusion width; null = the text encoder's width (ignored with a checkpoint)",
        },
        **stack_properties(depth=6, layers_example="[6, 12] of a BERT-base checkpoint for ALBEF",
                          checkpoint_use="whose layers initialise the fusion (cross-attention stays random)"),
    },
}


def build_cross_attention(
    *,
    arch: str,
    width: Optional[int],
    depth: int,
    heads: int,
    intermediate: Optional[int],
    dropout: float,
    layers: Optional[list[int]],
    checkpoint: Optional[str],
    context: Any,
) -> CrossAttentionFusion:
    own = layer_config(
        arch,
        width=width or context["text_width"],
        heads=heads,
        intermediate=intermediate,
        dropout=dropout,
    )
    config, pretrained = own, None
    if checkpoint is not None:
        config, pretrained = checkpoint_model(checkpoint, arch, dropout, context, default=own,
                                              need_model=context.get("load_pretrained", True))
        # a stand-in for a checkpoint that is gone is as deep as the layers it selects
        depth = max(depth, layers[1] if layers else 0) if config is own else config.num_hidden_layers
    start, end = layer_range(layers, depth)
    return CrossAttentionFusion(
        cross_layers(config, start, end, pretrained),
        width=config.hidden_size,
        text_width=context["text_width"],
        image_width=context["image_width"],
    )


COMPONENTS = [
    ComponentSpec(
        "fusion", "cross_attention", build_cross_attention, SCHEMA, __doc__.strip().splitlines()[0]
    )
]
