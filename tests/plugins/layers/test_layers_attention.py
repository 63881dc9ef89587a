"""plugins.layers.attention: SDPA attention against a hand-written softmax, pre-norm blocks."""

from __future__ import annotations

import pytest
import torch

from plugins.layers.attention import Attention, PreNormBlock, key_padding_mask, projection

B, L, K, D, H = 2, 5, 4, 16, 4


def reference_attention(q, k, v, heads, valid=None):
    """softmax(q k^T / sqrt(d)) v per head, with invalid keys given -inf scores."""
    split = lambda t: t.unflatten(-1, (heads, -1)).transpose(1, 2)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5  # [B,H,L,K]
    if valid is not None:
        scores = scores.masked_fill(~valid[:, None, None, :].bool(), float("-inf"))
    return (scores.softmax(-1) @ v).transpose(1, 2).flatten(2)


def test_self_attention_matches_reference_with_padding():
    torch.manual_seed(0)
    attn = Attention(D, H)
    x = torch.randn(B, L, D)
    valid = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    q, k, v = attn.qkv(x).chunk(3, dim=-1)
    expected = attn.proj(reference_attention(q, k, v, H, valid))
    torch.testing.assert_close(attn(x, mask=key_padding_mask(valid)), expected)


def test_cross_attention_reads_a_context_of_another_width():
    torch.manual_seed(0)
    attn = Attention(D, H, context_dim=24)
    x, context = torch.randn(B, L, D), torch.randn(B, K, 24)
    k, v = attn.kv(context).chunk(2, dim=-1)
    torch.testing.assert_close(attn(x, context), attn.proj(reference_attention(attn.q(x), k, v, H)))


def test_width_not_divisible_by_heads_is_refused():
    with pytest.raises(ValueError, match="divisible"):
        Attention(10, 4)


def test_pre_norm_block_layout_and_parameter_count():
    torch.manual_seed(0)
    block = PreNormBlock(D, H, mlp_ratio=2.0)
    x = torch.randn(B, L, D)
    expected = x + block.attn(block.norm1(x))
    expected = expected + block.mlp(block.norm2(expected))
    torch.testing.assert_close(block(x), expected)
    assert sum(p.numel() for p in block.parameters()) == 4 * D + (3 * D * D + 3 * D) + (
        D * D + D
    ) + (2 * D * D + 2 * D) + (2 * D * D + D)


def test_cross_block_ignores_padded_context_and_needs_context():
    torch.manual_seed(0)
    block = PreNormBlock(D, H, context_dim=8)
    x, context = torch.randn(B, L, D), torch.randn(B, K, 8)
    valid = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    changed = torch.where(valid[..., None].bool(), context, torch.randn(B, K, 8))
    torch.testing.assert_close(
        block(x, context=context, context_mask=valid), block(x, context=changed, context_mask=valid)
    )
    out = block(x, context=context)
    out.square().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in block.parameters())
    with pytest.raises(ValueError, match="context"):
        block(x)


def test_projection_is_identity_for_equal_widths():
    assert isinstance(projection(8, 8), torch.nn.Identity) and isinstance(
        projection(8, 4), torch.nn.Linear
    )
