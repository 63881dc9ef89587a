"""Fusion ``bert_concat``: BERT layers over the concatenated image and text tokens (MAMO §3.1).

MAMO initialises its text encoder with BERT-base layers [0,6) and its fusion with layers
[6,12); unlike ALBEF's fusion (``cross_attention``) the fusion layers are ordinary
post-norm self-attention BERT layers run over ``image tokens + text tokens`` ("the
visual and linguistic tokens are concatenated and fed to the multimodal fusion
encoder"), so every weight of those layers loads from the checkpoint and none starts
random. Text padding is excluded from attention; image tokens are all attended.

Outputs: the sequence split back into the image stream [B,1+N',D] and the text stream
[B,T',D]; ``pooled`` is the fused text [CLS] (``pool: text``, ALBEF's ITM input, which MAMO
inherits) or the fused image [CLS] (``pool: image``, the sequence's first token). Image or
text tokens of another width pass through a linear projection first.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn
from transformers.models.bert.modeling_bert import BertLayer

from framework.api import ComponentSpec, FusedEncoding, ImageEncoding, TextEncoding

from .._layers.bert import (
    ARCHS,
    additive_mask,
    checkpoint_model,
    layer_config,
    layer_range,
    stack_properties,
)
from .._layers.projection import projection


class BertConcatFusion(nn.Module):
    """Post-norm BERT self-attention layers over ``[image; text]``."""

    encodes_image_alone = True  # joint self-attention: an empty caption leaves an image encoder

    def __init__(self, layers: nn.ModuleList, *, width: int, image_width: int, text_width: int, pool: str) -> None:
        super().__init__()
        self.image_proj = projection(image_width, width)
        self.text_proj = projection(text_width, width)
        self.layers = layers
        self.pool = pool
        self.width = self.image_width = self.text_width = width

    def forward(self, image: ImageEncoding, text: TextEncoding) -> FusedEncoding:
        """image tokens [B,1+N',Di] ([CLS] first), text tokens [B,T',Dt] -> streams [B,*,D], pooled [B,D]."""
        v, w = self.image_proj(image.tokens), self.text_proj(text.tokens)  # [B,1+N',D], [B,T',D]
        split = v.shape[1]
        x = torch.cat([v, w], dim=1)  # [B,S,D], S = 1+N'+T'
        valid = torch.cat([torch.ones_like(v[..., 0], dtype=torch.long), text.attention_mask.long()], dim=1)  # [B,S]
        mask = additive_mask(valid, x.dtype)  # [B,1,1,S]: text padding is never attended
        for layer in self.layers:
            x = layer(x, mask)
        image_out, text_out = x[:, :split], x[:, split:]
        pooled = text_out[:, 0] if self.pool == "text" else image_out[:, 0]
        return FusedEncoding(image=image_out, text=text_out, pooled=pooled)


def bert_layers(config: Any, start: int, end: int, pretrained: Optional[nn.Module]) -> nn.ModuleList:
    """Layers ``[start, end)`` as transformers ``BertLayer``s, copied from ``pretrained`` when given
    (same class and names: a checkpoint's layer loads strictly)."""
    stack = nn.ModuleList(BertLayer(config) for _ in range(start, end))
    if pretrained is None:
        for module in stack.modules():  # BERT's initialisation (transformers' _init_weights)
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=config.initializer_range)
                nn.init.zeros_(module.bias)
    else:
        for layer, source in zip(stack, pretrained.encoder.layer[start:end]):
            layer.load_state_dict(source.state_dict())
    return stack


SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "arch": {"enum": sorted(ARCHS), "default": "bert",
                 "description": "layer flavour (LayerNorm eps) and checkpoint type"},
        "width": {"type": ["integer", "null"], "minimum": 1, "default": None,
                  "description": "fusion width; null = the text encoder's width (ignored with a checkpoint)"},
        "pool": {"enum": ["text", "image"], "default": "text",
                 "description": "which fused [CLS] is `pooled` (ITM's input): the text's (ALBEF's) or the image's"},
        **stack_properties(depth=6, layers_example="[6, 12] of a BERT-base checkpoint for MAMO",
                           checkpoint_use="whose layers initialise the fusion"),
    },
}


def build_bert_concat(*, arch: str, width: Optional[int], pool: str, depth: int, heads: int,
                      intermediate: Optional[int], dropout: float, layers: Optional[list[int]],
                      checkpoint: Optional[str], context: Any) -> BertConcatFusion:
    pretrained = None
    own = layer_config(arch, width=width or context["text_width"], heads=heads, intermediate=intermediate,
                       dropout=dropout)
    config = own
    if checkpoint is not None:
        config, pretrained = checkpoint_model(checkpoint, arch, dropout, context, default=own,
                                              need_model=context.get("load_pretrained", True))
        # a stand-in for a checkpoint that is gone is as deep as the layers it selects
        depth = max(depth, layers[1] if layers else 0) if config is own else config.num_hidden_layers
    if config.hidden_size % config.num_attention_heads:
        raise ValueError(f"fusion width {config.hidden_size} is not divisible by {config.num_attention_heads} heads; "
                         "pick heads dividing the width")
    start, end = layer_range(layers, depth)
    return BertConcatFusion(bert_layers(config, start, end, pretrained), width=config.hidden_size,
                            image_width=context["image_width"], text_width=context["text_width"], pool=pool)


COMPONENTS = [ComponentSpec("fusion", "bert_concat", build_bert_concat, SCHEMA, __doc__.strip().splitlines()[0])]
