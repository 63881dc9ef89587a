"""What every plain-PyTorch reference step shares: the optimiser loop and small layers.

A reference is written the way one would write a single model by hand: no registry, no
engine, bf16 autocast (when the recipe trains in bf16), ``scaled_dot_product_attention``,
fused AdamW (as the framework's engine), gradient clipping as the recipe asks, masks drawn on the device.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn


class PlainStep:
    """``loss(batch)`` under autocast, then ``loss.backward()``, then ``step()``."""

    def __init__(self, model: nn.Module, recipe: Mapping[str, Any], device: torch.device) -> None:
        self.model = model.to(device)
        self.device = device
        optim, train = recipe["optim"], recipe["train"]
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=optim["lr"], betas=tuple(optim["betas"]),
                                           eps=optim["eps"], weight_decay=optim["weight_decay"], fused=True)
        autocast = recipe["deepspeed"]["config"].get("torch_autocast", {}).get("enabled", False)
        self.bf16 = train["precision"] == "bf16" or autocast  # as the framework side runs it
        self.grad_clip = train["grad_clip"]

    def loss(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.model(batch)

    def step(self) -> None:
        if self.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip, foreach=True)
        self.optimizer.step()
        self.zero_grad()

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """[B,3,H,W] -> [B,N,3*p*p] in row-major patch order."""
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch) * (w // patch), patch * patch * c)


def random_keep(rows: int, length: int, keep: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row random split of ``length`` positions: kept [rows,keep] and masked [rows,length-keep]."""
    order = torch.rand(rows, length, device=device).argsort(dim=1)
    return order[:, :keep], order[:, keep:]


def take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows of x [B,L,D] at index [B,K] -> [B,K,D]."""
    return torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1]))


class MultiHeadAttention(nn.Module):
    """Self-attention (``context`` None) or cross-attention through SDPA."""

    def __init__(self, width: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q, self.kv, self.out = nn.Linear(width, width), nn.Linear(width, 2 * width), nn.Linear(width, width)

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, n, d = x.shape
        q = self.q(x).view(b, n, self.heads, -1).transpose(1, 2)  # [B,H,N,dh]
        k, v = self.kv(context).view(b, context.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)  # [B,H,M,dh] each
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class PostNormCrossBlock(nn.Module):
    """BERT layout with cross-attention: LN(x + self), LN(x + cross), LN(x + MLP)."""

    def __init__(self, width: int, heads: int, hidden: int, dropout: float, eps: float) -> None:
        super().__init__()
        self.self_attn, self.cross_attn = (MultiHeadAttention(width, heads, dropout),
                                           MultiHeadAttention(width, heads, dropout))
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))
        self.norms = nn.ModuleList(nn.LayerNorm(width, eps=eps) for _ in range(3))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor | None, context: torch.Tensor,
                context_mask: torch.Tensor | None) -> torch.Tensor:
        x = self.norms[0](x + self.drop(self.self_attn(x, x, x_mask)))
        x = self.norms[1](x + self.drop(self.cross_attn(x, context, context_mask)))
        return self.norms[2](x + self.drop(self.mlp(x)))
