"""Image encoder ``vit``: mask modes, parameter counts, timm checkpoint loading."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from encoder_helpers import random_mask
from safetensors.torch import save_file
from timm.models.vision_transformer import VisionTransformer

from framework.registry import ComponentBuildError

TINY = {"type": "vit", "width": 32, "depth": 2, "heads": 2, "patch_size": 8}
B, N, KEEP = 2, 16, 5


def build(context, **params):
    return context.registry.build("image_encoder", {**TINY, **params}, context)


def vit_params(d: int, depth: int, patch: int, n: int, hidden: int) -> int:
    """Hand count of a timm ViT without head: patch conv, CLS, positions, blocks, final norm."""
    block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * hidden + hidden) + (hidden * d + d)
    return (3 * patch * patch * d + d) + d + (1 + n) * d + depth * block + 2 * d


def images(seed: int = 0) -> torch.Tensor:
    return torch.randn(B, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    "mode,extra", [("drop", 0), ("input", 32), ("after_encoder", 32 + 17 * 32)]
)
def test_tiny_parameter_count_matches_hand_count(context, mode, extra):
    encoder = build(context, mask_tokens=mode)
    assert count(encoder) == vit_params(32, 2, 8, 16, 128) + extra
    assert (encoder.width, encoder.patch_size, encoder.grid, encoder.num_patches) == (
        32,
        8,
        (4, 4),
        16,
    )


def test_vit_base_16_224_has_85_8m_parameters(context):
    with torch.device("meta"):
        encoder = context.build("image_encoder", {"type": "vit"}, image_size=224)
    assert count(encoder) == vit_params(768, 12, 16, 196, 3072) == 85_798_656


@pytest.mark.parametrize("mode", ["drop", "input", "after_encoder"])
def test_no_mask_encodes_every_patch_like_timm(context, mode):
    encoder = build(context, mask_tokens=mode).eval()
    out = encoder(images())
    assert out.layout == "full" and out.tokens.shape == (B, 1 + N, 32)
    expected = encoder.vit.forward_features(images())
    if mode == "after_encoder":
        expected = expected + encoder.post_pos_embed
    torch.testing.assert_close(out.tokens, expected)


def test_drop_mode_equals_blocks_on_gathered_visible_tokens(context):
    encoder = build(context, mask_tokens="drop").eval()
    mask = random_mask(B, N, KEEP)
    out = encoder(images(), mask)
    assert out.layout == "visible" and out.tokens.shape == (B, 1 + KEEP, 32)
    vit = encoder.vit
    patches = vit.patch_embed(images()) + vit.pos_embed[:, 1:]  # [B,N,D]
    cls = (vit.cls_token + vit.pos_embed[:, :1]).expand(B, -1, -1)
    visible = torch.stack([patches[b, mask.ids_keep[b]] for b in range(B)])  # [B,K,D]
    expected = vit.norm(vit.blocks(torch.cat([cls, visible], dim=1)))
    torch.testing.assert_close(out.tokens, expected)


def masked_pixels_changed(mask) -> torch.Tensor:
    """images() with every masked 8x8 patch replaced by other noise."""
    pixel_mask = mask.mask.reshape(B, 4, 4).repeat_interleave(8, 1).repeat_interleave(8, 2)[:, None]
    return torch.where(pixel_mask, images(seed=1), images())


@pytest.mark.parametrize("mode", ["drop", "input", "after_encoder"])
def test_masked_pixels_do_not_reach_the_output(context, mode):
    encoder = build(context, mask_tokens=mode).eval()
    mask = random_mask(B, N, KEEP)
    torch.testing.assert_close(
        encoder(images(), mask).tokens, encoder(masked_pixels_changed(mask), mask).tokens
    )


def test_input_mode_puts_the_mask_token_before_the_blocks(context):
    encoder = build(context, mask_tokens="input").eval()
    mask = random_mask(B, N, KEEP)
    embedded = torch.where(
        mask.mask[..., None], encoder.mask_token, encoder.vit.patch_embed(images())
    )
    expected = encoder.vit.norm(encoder.vit.blocks(encoder.vit._pos_embed(embedded)))
    out = encoder(images(), mask)
    assert out.layout == "full" and out.tokens.shape == (B, 1 + N, 32)
    torch.testing.assert_close(out.tokens, expected)


def test_after_encoder_mode_fills_masked_positions_with_the_mask_token(context):
    encoder = build(context, mask_tokens="after_encoder").eval()
    mask = random_mask(B, N, KEEP)
    out = encoder(images(), mask)
    assert out.layout == "full" and out.tokens.shape == (B, 1 + N, 32)
    drop = build(context, mask_tokens="drop").eval()
    drop.load_state_dict(encoder.state_dict(), strict=False)
    encoded = drop(images(), mask).tokens  # [B,1+K,D] visible-only encoding
    pos = encoder.post_pos_embed[0]  # [1+N,D]
    torch.testing.assert_close(out.tokens[:, 0], encoded[:, 0] + pos[0])
    for b in range(B):
        kept = mask.ids_keep[b]
        torch.testing.assert_close(out.tokens[b, 1 + kept], encoded[b, 1:] + pos[1 + kept])
        masked = mask.mask[b].nonzero().squeeze(1)
        torch.testing.assert_close(
            out.tokens[b, 1 + masked],
            encoder.mask_token[0].expand(len(masked), -1) + pos[1 + masked],
        )


@pytest.mark.parametrize("mode", ["drop", "after_encoder"])
def test_dropping_modes_need_ids_keep(context, mode):
    mask = random_mask(B, N, KEEP)
    with pytest.raises(ValueError, match="ids_keep"):
        build(context, mask_tokens=mode)(
            images(), dataclasses.replace(mask, ids_keep=None, ids_restore=None)
        )


def test_mask_of_the_wrong_grid_is_refused(context):
    with pytest.raises(ValueError, match="patches"):
        build(context, mask_tokens="input")(images(), random_mask(B, 9, 3))


@pytest.mark.parametrize("mode", ["drop", "input", "after_encoder"])
def test_forward_backward_without_nan(context, mode):
    encoder = build(context, mask_tokens=mode)
    out = encoder(images(), random_mask(B, N, KEEP))
    out.tokens.square().mean().backward()
    grads = [p.grad for p in encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def timm_reference(image_size: int = 32) -> VisionTransformer:
    return VisionTransformer(
        img_size=image_size, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=10
    )


def test_checkpoint_file_round_trip(context, tmp_path):
    reference = timm_reference()
    torch.save({"model": reference.state_dict()}, tmp_path / "vit.pth")
    encoder = build(context, checkpoint=str(tmp_path / "vit.pth"))
    for key, value in encoder.vit.state_dict().items():
        torch.testing.assert_close(value, reference.state_dict()[key])


def test_checkpoint_directory_with_safetensors_and_resampled_positions(context, tmp_path):
    reference = timm_reference(image_size=32)
    save_file(reference.state_dict(), tmp_path / "model.safetensors")
    encoder = context.build("image_encoder", {**TINY, "checkpoint": str(tmp_path)}, image_size=48)
    assert encoder.vit.pos_embed.shape == (1, 1 + 36, 32)
    torch.testing.assert_close(
        encoder.vit.blocks[1].mlp.fc2.weight, reference.blocks[1].mlp.fc2.weight
    )


def test_an_image_size_other_than_the_datas_is_refused(context):
    with pytest.raises(ValueError, match="differs from data.image_size 32"):
        build(context, image_size=48)
    assert build(context, image_size=32).grid == (4, 4)


def test_checkpoint_of_another_size_is_refused_clearly(context, tmp_path):
    torch.save(timm_reference().state_dict(), tmp_path / "vit.pth")
    with pytest.raises(ValueError, match="does not fit this encoder"):
        build(context, depth=3, checkpoint=str(tmp_path / "vit.pth"))
    with pytest.raises(ComponentBuildError, match="model.safetensors"):
        build(context, checkpoint=str(tmp_path / "missing"))
