"""Closed-form FLOP counts of ViT and BERT encoders, to cross-check ``flop_counter``.

A FLOP is half a multiply-add: a linear map of ``n`` tokens from ``d_in`` to ``d_out``
costs ``2 n d_in d_out``, attention of ``n`` queries over ``m`` keys at width ``d`` costs
``2 n m d`` for the scores and as much for the weighted sum. Norms, softmax, GELU and
additions are not counted (``torch.utils.flop_counter`` skips them too). Forward only:
a training step's backward costs twice the forward (two matrix products per product).

Visible-only encoders (MAE, He et al. 2022) run their blocks over the kept tokens
alone, so pass ``visible`` patches rather than the whole grid.
"""

from __future__ import annotations

from typing import Optional


def linear_flops(tokens: int, d_in: int, d_out: int) -> int:
    """A dense layer over ``tokens`` rows."""
    return 2 * tokens * d_in * d_out


def attention_flops(queries: int, keys: int, width: int) -> int:
    """Scores ``Q K^T`` plus the weighted sum ``A V`` (all heads together)."""
    return 4 * queries * keys * width


def self_attention_block_flops(tokens: int, width: int, hidden: int) -> int:
    """One transformer block (pre- or post-norm): qkv, attention, output projection, 2-layer MLP."""
    return (linear_flops(tokens, width, 3 * width) + attention_flops(tokens, tokens, width)
            + linear_flops(tokens, width, width) + linear_flops(tokens, width, hidden)
            + linear_flops(tokens, hidden, width))


def cross_attention_flops(queries: int, keys: int, width: int, key_width: Optional[int] = None) -> int:
    """A cross-attention sub-layer: q from the queries, k and v from ``keys`` tokens of
    ``key_width`` (default ``width``), attention, output projection."""
    key_width = key_width or width
    return (linear_flops(queries, width, width) + linear_flops(keys, key_width, 2 * width)
            + attention_flops(queries, keys, width) + linear_flops(queries, width, width))


def vit_flops(*, image_size: int, patch_size: int, width: int, depth: int, mlp_ratio: float = 4.0,
              visible: Optional[int] = None, cls_token: bool = True) -> int:
    """Forward FLOPs per image of a ViT encoder (patch embedding + ``depth`` blocks).

    ``visible``: patches the blocks see (default: all); the patch embedding still runs on
    every patch, as a convolution over the whole image does.
    """
    patches = (image_size // patch_size) ** 2
    tokens = (patches if visible is None else visible) + int(cls_token)
    embed = linear_flops(patches, 3 * patch_size * patch_size, width)
    return embed + depth * self_attention_block_flops(tokens, width, int(width * mlp_ratio))


def bert_flops(*, seq_len: int, width: int, depth: int, intermediate: Optional[int] = None,
               pooler: bool = False) -> int:
    """Forward FLOPs per caption of ``depth`` BERT layers over ``seq_len`` tokens (embedding
    look-ups cost none); ``pooler`` adds BERT's dense layer on [CLS]."""
    hidden = intermediate or 4 * width
    return depth * self_attention_block_flops(seq_len, width, hidden) + (linear_flops(1, width, width) if pooler else 0)


def bert_cross_flops(*, seq_len: int, context_len: int, width: int, depth: int,
                     intermediate: Optional[int] = None, context_width: Optional[int] = None) -> int:
    """Forward FLOPs of ``depth`` BERT layers with cross-attention to ``context_len`` tokens
    (ALBEF's fusion layers, two-stream cross-modality encoders)."""
    hidden = intermediate or 4 * width
    per_layer = (self_attention_block_flops(seq_len, width, hidden)
                 + cross_attention_flops(seq_len, context_len, width, context_width))
    return depth * per_layer
