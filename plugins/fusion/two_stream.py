"""Fusion ``two_stream``: MaskVLM's image and text cross-modality encoders (Kwon et al. 2023, Fig. 3b, 7c).

Two stacks of post-norm cross-attention blocks (self-attention, cross-attention, MLP; the
BERT layer layout). The image stream's queries are the image tokens and its keys/values the
text encoder's outputs; the text stream's queries are the text tokens and its keys/values the
image encoder's outputs (Appendix A: "use the outputs of the text (image) encoder as keys and
values"). Text padding is masked in both. ``pooled`` is what ITM classifies: the element-wise
product of the two cross-modality [CLS] features (Eq. 3), or their concatenation as an option.

Widths: each stream keeps its encoder's width; keys/values from the other modality go through
a linear projection when the widths differ, and so does the image [CLS] before the product.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from framework.api import ComponentSpec, FusedEncoding, ImageEncoding, TextEncoding

from .._layers.bert import ARCHS, additive_mask, cross_layers, layer_config
from .._layers.projection import projection


class TwoStreamFusion(nn.Module):
    """Image-to-text and text-to-image cross-modality encoders, run side by side."""

    def __init__(
        self,
        *,
        image_layers: nn.ModuleList,
        text_layers: nn.ModuleList,
        image_width: int,
        text_width: int,
        pool: str,
    ) -> None:
        super().__init__()
        self.image_layers, self.text_layers = image_layers, text_layers
        self.text_to_image = projection(text_width, image_width)  # keys/values of the image stream
        self.image_to_text = projection(image_width, text_width)  # keys/values of the text stream
        self.pool = pool
        if pool == "product":
            self.pool_proj = projection(image_width, text_width)
        self.image_width, self.text_width = image_width, text_width
        self.width = text_width if pool == "product" else image_width + text_width

    def forward(self, image: ImageEncoding, text: TextEncoding) -> FusedEncoding:
        """image tokens [B,1+N',Di], text tokens [B,T',Dt] -> both streams updated, pooled [B,width]."""
        v, w = image.tokens, text.tokens
        text_mask = additive_mask(text.attention_mask, w.dtype)  # [B,1,1,T'] for attending to text
        text_kv, image_kv = self.text_to_image(w), self.image_to_text(v)  # [B,T',Di], [B,1+N',Dt]
        for layer in self.image_layers:
            v = layer(v, None, text_kv, text_mask)
        for layer in self.text_layers:
            w = layer(w, text_mask, image_kv, None)
        if self.pool == "product":
            pooled = self.pool_proj(v[:, 0]) * w[:, 0]  # [B,Dt]
        else:
            pooled = torch.cat([v[:, 0], w[:, 0]], dim=-1)  # [B,Di+Dt]
        return FusedEncoding(image=v, text=w, pooled=pooled)


SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "arch": {
            "enum": sorted(ARCHS),
            "default": "roberta",
            "description": "layer flavour (LayerNorm eps); MaskVLM's text side is RoBERTa",
        },
        "depth": {
            "type": "integer",
            "minimum": 1,
            "default": 3,
            "description": "blocks per cross-modality encoder",
        },
        "heads": {
            "type": "integer",
            "minimum": 1,
            "default": 12,
            "description": "attention heads in both streams",
        },
        "mlp_ratio": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 4.0,
            "description": "MLP hidden width / stream width",
        },
        "dropout": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.1,
            "description": "hidden and attention dropout",
        },
        "pool": {
            "enum": ["product", "concat"],
            "default": "product",
            "description": "ITM input: 'product' = image CLS * text CLS (MaskVLM Eq. 3), 'concat' = both CLS",
        },
    },
}


def build_two_stream(
    *, arch: str, depth: int, heads: int, mlp_ratio: float, dropout: float, pool: str, context: Any
) -> TwoStreamFusion:
    def stack(width: int) -> nn.ModuleList:
        config = layer_config(
            arch, width=width, heads=heads, intermediate=int(width * mlp_ratio), dropout=dropout
        )
        return cross_layers(config, 0, depth, None)

    image_width, text_width = context["image_width"], context["text_width"]
    return TwoStreamFusion(
        image_layers=stack(image_width),
        text_layers=stack(text_width),
        image_width=image_width,
        text_width=text_width,
        pool=pool,
    )


COMPONENTS = [
    ComponentSpec("fusion", "two_stream", build_two_stream, SCHEMA, __doc__.strip().splitlines()[0])
]
