"""Decoder ``cross_attention``: MaskVLM's image cross-modality decoder (Kwon et al. 2023, Sec. 3.1, Fig. 2).

``g_im^de`` "consists of 3 cross-attention blocks followed by a fully connected layer": image
tokens (queries) run through post-norm blocks of self-attention, cross-attention to the
view's text tokens (keys/values) and an MLP — the block of the cross-modality encoders
(Fig. 3b, 7c), reused from :mod:`framework_plugins._layers.bert`. The FC to pixels is the MIM
objective's ``head``, so the decoder returns tokens, not pixels. Unlike MAE's self-attention
decoder, the text keeps informing the reconstruction while decoding.

Queries come from the fusion's image stream (the output of ``g_im``, as in the paper) or the
image encoder; keys/values from the unmasked text encoder features ``w`` (Appendix A.2) or
the fusion's text stream. Text padding is never attended to. Queries must hold a token per
patch (layout ``full``, e.g. a ViT with ``mask_tokens: input``): this decoder adds no
positions, so it cannot place mask tokens for dropped patches (use ``transformer`` there).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from framework.api import BuildContext, ComponentSpec, EncodedView, FusedEncoding

from .._layers.bert import ARCHS, additive_mask, cross_layers, layer_config
from .._layers.projection import projection

QUERY_WIDTHS = {"fused": "fused_image_width", "image_encoder": "image_width"}
MEMORY_WIDTHS = {"text_encoder": "text_width", "fused": "fused_text_width"}


class CrossAttentionDecoder(nn.Module):
    """Image tokens [B,1+N,*] attend to the view's text [B,T,*]; returns image [B,1+N,width]."""

    def __init__(self, *, width: int | None, depth: int, heads: int, mlp_ratio: float, dropout: float,
                 arch: str, source: str, memory: str, context: BuildContext) -> None:
        super().__init__()
        query_width = context[QUERY_WIDTHS[source]]
        self.width = width or query_width
        self.streams = ("image",)
        self.source, self.memory = source, memory
        self.query_in = projection(query_width, self.width)  # [.,Dq] -> [.,W]
        self.memory_in = projection(context[MEMORY_WIDTHS[memory]], self.width)  # [.,Dt] -> [.,W]
        config = layer_config(arch, width=self.width, heads=heads, intermediate=int(self.width * mlp_ratio),
                              dropout=dropout)
        self.blocks = cross_layers(config, 0, depth, None)

    def _queries(self, view: EncodedView) -> torch.Tensor:
        if view.image.layout != "full":
            raise ValueError(
                f"decoder 'cross_attention' needs a token per patch but view '{view.name}' has '{view.image.layout}' "
                "image tokens; use an image encoder with mask_tokens 'input' or 'after_encoder', or the "
                "'transformer' decoder, which restores dropped patches")
        return view.fused.image if self.source == "fused" else view.image.tokens  # [B,1+N,Dq]

    def _memory(self, view: EncodedView) -> torch.Tensor:
        return view.fused.text if self.memory == "fused" else view.text.tokens  # [B,T',Dt]

    def forward(self, view: EncodedView) -> FusedEncoding:
        x = self.query_in(self._queries(view))  # [B,1+N,W]
        text = self.memory_in(self._memory(view))  # [B,T',W]
        text_mask = additive_mask(view.text.attention_mask, text.dtype)  # [B,1,1,T']: no attention to padding
        for block in self.blocks:
            x = block(x, None, text, text_mask)  # post-norm: each block ends in LayerNorm
        return FusedEncoding(image=x, text=None, pooled=x[:, 0])


SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "width": {"type": ["integer", "null"], "minimum": 8, "default": None,
                  "description": "Decoder width (null: the width of the image tokens it reads, 768 for MaskVLM)."},
        "depth": {"type": "integer", "minimum": 1, "default": 3, "description": "Cross-attention blocks (MaskVLM: 3)."},
        "heads": {"type": "integer", "minimum": 1, "default": 12,
                  "description": "Attention heads (must divide width)."},
        "mlp_ratio": {"type": "number", "exclusiveMinimum": 0, "default": 4.0,
                      "description": "MLP hidden width / width."},
        "dropout": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.1,
                    "description": "Hidden and attention dropout (0.1 as in the cross-modality encoders' BERT "
                                   "layers)."},
        "arch": {"enum": sorted(ARCHS), "default": "roberta",
                 "description": "Layer flavour (LayerNorm eps) of the blocks."},
        "source": {"enum": list(QUERY_WIDTHS), "default": "fused",
                   "description": "Queries: the fusion's image stream (MaskVLM: output of g_im) or the image encoder's "
                                  "tokens."},
        "memory": {"enum": list(MEMORY_WIDTHS), "default": "text_encoder",
                   "description": "Keys/values: the text encoder's tokens (MaskVLM: unmasked w) or the fusion's text "
                                  "stream."},
    },
}

COMPONENTS = [ComponentSpec("decoder", "cross_attention", CrossAttentionDecoder, SCHEMA,
                            "Image tokens cross-attend to text through post-norm blocks (MaskVLM's image decoder).")]
