"""M3AE embedding encoders ``patch_embed`` and ``token_embed``: values, dropping, counts."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from encoder_helpers import VOCAB, random_mask

from framework.tokens import patchify
from framework.types import TextMaskingOutput
from framework_plugins._layers.posembed import sincos_1d, sincos_2d

B, D = 2, 16


def images() -> torch.Tensor:
    return torch.randn(B, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_patch_embed_is_linear_projection_plus_positions_type_and_cls(context):
    encoder = context.registry.build(
        "image_encoder", {"type": "patch_embed", "width": D, "patch_size": 8}, context
    )
    out = encoder(images())
    assert out.layout == "full" and out.tokens.shape == (B, 1 + 16, D) and encoder.grid == (4, 4)
    expected = (
        patchify(images(), 8) @ encoder.proj.weight.T
        + encoder.proj.bias
        + sincos_2d((4, 4), D)
        + encoder.type_embed
    )
    torch.testing.assert_close(out.tokens[:, 1:], expected)
    torch.testing.assert_close(out.tokens[:, 0], encoder.cls_token[0].expand(B, -1))
    assert sum(p.numel() for p in encoder.parameters()) == 3 * 8 * 8 * D + D + D + D


def test_patch_embed_drops_masked_patches_keeping_their_positions(context):
    encoder = context.registry.build(
        "image_encoder", {"type": "patch_embed", "width": D, "patch_size": 8}, context
    )
    mask = random_mask(B, 16, keep=4)
    out = encoder(images(), mask)
    assert out.layout == "visible" and out.tokens.shape == (B, 1 + 4, D)
    full = encoder(images()).tokens[:, 1:]
    torch.testing.assert_close(
        out.tokens[:, 1:], torch.stack([full[b, mask.ids_keep[b]] for b in range(B)])
    )
    with pytest.raises(ValueError, match="ids_keep"):
        encoder(images(), dataclasses.replace(mask, ids_keep=None))


def test_token_embed_values_dropping_and_count(context):
    encoder = context.registry.build("text_encoder", {"type": "token_embed", "width": D}, context)
    ids = torch.randint(0, VOCAB, (B, 12), generator=torch.Generator().manual_seed(0))
    attention = torch.ones(B, 12, dtype=torch.long)
    attention[0, 9:] = 0
    out = encoder(ids, attention)
    torch.testing.assert_close(
        out.tokens, encoder.embed.weight[ids] + sincos_1d(torch.arange(12), D) + encoder.type_embed
    )
    drop = random_mask(B, 12, keep=3)
    mask = TextMaskingOutput(
        ids, torch.full_like(ids, -100), drop.mask, drop.ids_keep, drop.ids_restore
    )
    kept = encoder(ids, attention, mask)
    assert kept.tokens.shape == (B, 3, D)
    torch.testing.assert_close(
        kept.tokens, torch.stack([out.tokens[b, drop.ids_keep[b]] for b in range(B)])
    )
    assert torch.equal(kept.attention_mask, torch.gather(attention, 1, drop.ids_keep))
    assert sum(p.numel() for p in encoder.parameters()) == VOCAB * D + D
    with pytest.raises(ValueError, match="max_positions"):
        encoder(torch.zeros(B, 13, dtype=torch.long), torch.ones(B, 13, dtype=torch.long))
