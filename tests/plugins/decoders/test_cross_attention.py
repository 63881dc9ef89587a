"""Decoder ``cross_attention`` (MaskVLM's image cross-modality decoder): layout, text conditioning, padding."""

from __future__ import annotations

from types import SimpleNamespace

import jsonschema
import pytest
import torch

from framework.registry import BuildContext, Registry
from framework.types import FusedEncoding, ImageEncoding, TextEncoding
from framework_plugins import decoders
from framework_plugins._layers.bert import BertCrossLayer

B, N, T = 2, 4, 5
TINY = {"type": "cross_attention", "depth": 2, "heads": 2, "dropout": 0.0}


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.register_plugin(decoders, name="decoders", distribution="framework==test")
    return reg


def build(registry: Registry, image_width: int = 16, text_width: int = 16, **params):
    context = BuildContext(registry, {"image_width": image_width, "fused_image_width": image_width,
                                      "text_width": text_width, "fused_text_width": text_width})
    return registry.build("decoder", {**TINY, **params}, context)


def make_view(image_width: int = 16, text_width: int = 16, layout: str = "full", seed: int = 0) -> SimpleNamespace:
    """A view whose fusion output differs from its encoder output (so the source is visible)."""
    g = torch.Generator().manual_seed(seed)
    image = ImageEncoding(torch.randn(B, 1 + N, image_width, generator=g, requires_grad=True), layout)
    attention = torch.ones(B, T, dtype=torch.long)
    attention[1, 3:] = 0  # second caption has 2 pads
    text = TextEncoding(torch.randn(B, T, text_width, generator=g, requires_grad=True), attention)
    fused = FusedEncoding(image.tokens * 2 + 1, text.tokens * 3 - 1, image.tokens[:, 0])
    return SimpleNamespace(name="masked_image", image=image, text=text, fused=fused)


def test_output_keeps_the_full_image_layout_at_the_decoder_width(registry):
    decoder = build(registry, image_width=16, text_width=24, width=32)
    out = decoder(make_view(16, 24))
    assert out.image.shape == (B, 1 + N, 32) and out.text is None
    torch.testing.assert_close(out.pooled, out.image[:, 0])
    assert decoder.width == 32
    assert len(decoder.blocks) == 2 and all(isinstance(b, BertCrossLayer) for b in decoder.blocks)


def test_width_defaults_to_the_image_tokens_and_needs_no_projection(registry):
    decoder = build(registry)
    assert decoder.width == 16
    assert isinstance(decoder.query_in, torch.nn.Identity) and isinstance(decoder.memory_in, torch.nn.Identity)


def test_reconstruction_depends_on_the_text(registry):
    decoder = build(registry).eval()
    view = make_view()
    other = make_view(seed=1)
    changed = SimpleNamespace(**{**vars(view), "text": TextEncoding(other.text.tokens, view.text.attention_mask)})
    assert not torch.allclose(decoder(view).image, decoder(changed).image)


def test_text_padding_is_never_attended(registry):
    decoder = build(registry).eval()
    view = make_view()
    pad = view.text.attention_mask[..., None] == 0
    noisy = torch.where(pad, torch.randn(view.text.tokens.shape) * 100, view.text.tokens)
    changed = SimpleNamespace(**{**vars(view), "text": TextEncoding(noisy, view.text.attention_mask)})
    torch.testing.assert_close(decoder(view).image, decoder(changed).image)


@pytest.mark.parametrize("source, memory", [("fused", "text_encoder"), ("image_encoder", "fused")])
def test_source_and_memory_choose_which_tokens_are_read(registry, source, memory):
    decoder = build(registry, source=source, memory=memory).eval()
    view = make_view()
    x = view.fused.image if source == "fused" else view.image.tokens
    text = view.fused.text if memory == "fused" else view.text.tokens
    mask = (1.0 - view.text.attention_mask[:, None, None, :].float()) * torch.finfo(torch.float).min
    for block in decoder.blocks:  # the same post-norm blocks, driven by hand
        x = block(x, None, text, mask)
    torch.testing.assert_close(decoder(view).image, x)


def test_gradients_reach_image_text_and_every_block(registry):
    decoder = build(registry)
    view = make_view()
    decoder(view).image.square().mean().backward()
    assert view.image.tokens.grad.abs().sum() > 0 and view.text.tokens.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in decoder.parameters())


def test_parameter_count_is_depth_cross_layers(registry):
    d, inter = 16, 64
    attention = 4 * d * d + 4 * d + 2 * d  # q, k, v, out (+ biases) and LayerNorm
    layer = 2 * attention + (d * inter + inter) + (inter * d + d) + 2 * d
    assert sum(p.numel() for p in build(registry).parameters()) == 2 * layer


def test_visible_only_tokens_are_refused_with_a_fix(registry):
    with pytest.raises(ValueError, match="mask_tokens 'input'"):
        build(registry)(make_view(layout="visible"))


def test_schema_rejects_unknown_keys(registry):
    validator = jsonschema.Draft202012Validator(registry.get("decoder", "cross_attention").schema)
    assert not validator.is_valid({"depht": 3}) and not validator.is_valid({"memory": "image"})
    assert validator.is_valid({"depth": 3, "memory": "fused", "width": None})
