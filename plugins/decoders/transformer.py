"""MAE-style transformer decoder over a view's image tokens (optionally with its text).

Visible-only tokens are projected to the decoder width, mask tokens fill the dropped
positions (``ids_restore``), fixed 2-D sin-cos positions are added and timm blocks run
over the sequence (He et al. 2022, MAE §3; VLMAE's image decoder also attends to text
tokens, M3AE decodes both modalities jointly).
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from timm.layers.pos_embed_sincos import build_sincos2d_pos_embed
from timm.models.vision_transformer import Block
from torch import nn

from framework.api import BuildContext, ComponentSpec, EncodedView, FusedEncoding, restore_sequence

SOURCES = {"image_encoder": "image_width", "fused": "fused_image_width"}
TEXT_SOURCES = {"image_encoder": "text_width", "fused": "fused_text_width"}


def sincos_1d(length: int, dim: int) -> torch.Tensor:
    """Fixed 1-D sin-cos positions [length, dim] (Vaswani et al. 2017)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-torch.log(torch.tensor(10000.0)) / dim))
    emb = torch.zeros(length, dim)
    emb[:, 0::2] = torch.sin(pos * freq)
    emb[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return emb


class TransformerDecoder(nn.Module):
    """Decodes a view to full-grid image tokens (and text tokens when ``with_text``)."""

    def __init__(self, *, width: int, depth: int, heads: int, mlp_ratio: float, source: str,
                 with_text: bool, context: BuildContext) -> None:
        super().__init__()
        if width % heads or width % 4:
            raise ValueError(f"decoder width {width} must be a multiple of heads ({heads}) and of 4 (2-D sin-cos "
                             "positions)")
        self.width, self.source, self.with_text = width, source, with_text
        self.streams = ("image", "text") if with_text else ("image",)
        gh, gw = context["grid"]
        self.image_in = nn.Linear(context[SOURCES[source]], width)
        self.image_mask_token = nn.Parameter(torch.zeros(width))
        # [CLS] gets position 0; patches the fixed 2-D sin-cos table.
        pos = torch.cat([torch.zeros(1, width), build_sincos2d_pos_embed([gh, gw], width)])
        self.register_buffer("image_pos", pos[None], persistent=False)  # [1,1+N,W]
        self.text_in: Optional[nn.Linear] = None
        if with_text:
            self.text_in = nn.Linear(context[TEXT_SOURCES[source]], width)
            self.text_mask_token = nn.Parameter(torch.zeros(width))
            self.register_buffer("text_pos", sincos_1d(context["max_text_len"], width)[None], persistent=False)
            self.type_embed = nn.Parameter(torch.zeros(2, width))  # image, text
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio, qkv_bias=True) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        nn.init.normal_(self.image_mask_token, std=0.02)

    def no_weight_decay(self) -> set[str]:
        return {"image_mask_token", "text_mask_token", "type_embed"}

    def _image_tokens(self, view: EncodedView) -> torch.Tensor:
        tokens = view.image.tokens if self.source == "image_encoder" else view.fused.image
        x = self.image_in(tokens)  # [B,1+N',W]
        if view.image.layout == "visible":
            patches = restore_sequence(x[:, 1:], self.image_mask_token, view.image_mask.ids_restore)
            x = torch.cat([x[:, :1], patches], dim=1)  # [B,1+N,W]
        return x + self.image_pos

    def _text_tokens(self, view: EncodedView) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = view.text.tokens if self.source == "image_encoder" else view.fused.text
        x = self.text_in(tokens)  # [B,T',W]
        valid = view.text.attention_mask
        if view.text_mask is not None and view.text_mask.ids_restore is not None:
            x = restore_sequence(x, self.text_mask_token, view.text_mask.ids_restore)  # [B,T,W]
            valid = view.batch["attention_mask"]
        return x + self.text_pos[:, : x.shape[1]], valid

    def forward(self, view: EncodedView) -> FusedEncoding:
        image = self._image_tokens(view)
        n_image = image.shape[1]
        attn_mask = None
        if self.with_text:
            text, text_valid = self._text_tokens(view)
            x = torch.cat([image + self.type_embed[0], text + self.type_embed[1]], dim=1)
            valid = torch.cat([torch.ones_like(text_valid[:, :1]).expand(-1, n_image), text_valid], dim=1)
            attn_mask = valid[:, None, None, :].bool()  # [B,1,1,S]: keys that may be attended
        else:
            x = image
        for block in self.blocks:
            x = block(x, attn_mask=attn_mask)
        x = self.norm(x)
        text_out = x[:, n_image:] if self.with_text else None
        return FusedEncoding(image=x[:, :n_image], text=text_out, pooled=x[:, 0])


def _schema() -> dict[str, Any]:
    return {
        "type": "object", "additionalProperties": False,
        "properties": {
            "width": {"type": "integer", "minimum": 8, "default": 512, "description": "Decoder width."},
            "depth": {"type": "integer", "minimum": 1, "default": 8, "description": "Number of transformer blocks."},
            "heads": {"type": "integer", "minimum": 1, "default": 16,
                      "description": "Attention heads (must divide width)."},
            "mlp_ratio": {"type": "number", "exclusiveMinimum": 0, "default": 4.0,
                          "description": "MLP hidden width / width."},
            "source": {"enum": list(SOURCES), "default": "image_encoder",
                       "description": "Decode the image encoder's tokens or the fusion's."},
            "with_text": {"type": "boolean", "default": False,
                          "description": "Also decode the view's text tokens jointly (output `text`)."},
        },
    }


COMPONENTS = [ComponentSpec("decoder", "transformer", TransformerDecoder, _schema(),
                            "MAE-style transformer decoder; restores masked positions with mask tokens.")]
