"""Multi-head attention on torch SDPA and a pre-norm transformer block.

The block is the pre-norm layout of ViT / MAE / M3AE (``x + attn(LN(x))``, ``x + mlp(LN(x))``)
with an optional cross-attention sub-layer between the two (``x + xattn(LN(x), context)``),
the layout of pre-norm transformer decoders. Padding is excluded from attention by a key
mask, as M3AE excludes text padding.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from timm.layers import Mlp
from torch import nn


def projection(in_dim: int, out_dim: int) -> nn.Module:
    """Linear map between widths, or identity when they already agree."""
    return nn.Identity() if in_dim == out_dim else nn.Linear(in_dim, out_dim)


def key_padding_mask(valid: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """[B,K] (1/True = attend) -> boolean SDPA mask [B,1,1,K], or None when all are valid."""
    if valid is None:
        return None
    return valid.bool()[:, None, None, :]


class Attention(nn.Module):
    """Multi-head attention; self-attention when ``context`` is None, else cross-attention.

    Args:
        dim: width of the queries (and of the output).
        heads: number of heads; must divide ``dim``.
        context_dim: width of the keys/values source for cross-attention; None builds a
            self-attention layer with one fused qkv projection.
    """

    def __init__(self, dim: int, heads: int, context_dim: Optional[int] = None) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(
                f"attention width {dim} is not divisible by {heads} heads; pick heads dividing the width"
            )
        self.heads = heads
        self.cross = context_dim is not None
        if self.cross:
            self.q = nn.Linear(dim, dim)
            self.kv = nn.Linear(context_dim, 2 * dim)
        else:
            self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        context: Optional[torch.Tensor] = None,
        mask: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """x [B,L,D], context [B,K,Dc] (cross only), mask [B,1,1,K] bool (True = attend)."""
        b, length, dim = x.shape
        if self.cross:
            q = self.q(x)  # [B,L,D]
            k, v = self.kv(context).chunk(2, dim=-1)  # [B,K,D] each
        else:
            q, k, v = self.qkv(x).chunk(3, dim=-1)  # [B,L,D] each
        q, k, v = (
            t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v)
        )  # [B,H,*,D/H]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # [B,H,L,D/H]
        return self.proj(out.transpose(1, 2).reshape(b, length, dim))


class PreNormBlock(nn.Module):
    """Pre-norm transformer block: self-attention, optional cross-attention, MLP.

    Args:
        dim: token width.
        heads: attention heads.
        mlp_ratio: MLP hidden width / ``dim``.
        context_dim: width of the cross-attention source; None for a self-attention block.
    """

    def __init__(
        self, dim: int, heads: int, mlp_ratio: float = 4.0, context_dim: Optional[int] = None
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        if context_dim is not None:
            self.norm_cross = nn.LayerNorm(dim)
            self.cross_attn = Attention(dim, heads, context_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(
        self,
        x: torch.Tensor,
        mask: Optional[torch.Tensor] = None,
        context: Optional[torch.Tensor] = None,
        context_mask: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """x [B,L,D]; mask [B,L] valid keys of x; context [B,K,Dc]; context_mask [B,K] valid keys."""
        x = x + self.attn(self.norm1(x), mask=key_padding_mask(mask))
        if hasattr(self, "cross_attn"):
            if context is None:
                raise ValueError("this block has cross-attention and needs a context tensor")
            x = x + self.cross_attn(self.norm_cross(x), context, key_padding_mask(context_mask))
        return x + self.mlp(self.norm2(x))
