"""Objective ``feature_regression`` (VLMAE IFR, Eq. 2): [CLS] and patch targets by hand."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from framework.registry import BuildContext, Registry
from framework.types import ImageEncoding, MaskingOutput, TextEncoding
from framework_plugins import decoders, objectives

B, N, K, D = 2, 4, 2, 6


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.register_plugin(objectives, name="objectives", distribution="framework==test")
    reg.register_plugin(decoders, name="decoders", distribution="framework==test")
    return reg


def build(registry: Registry, **params):
    context = BuildContext(registry, {"image_width": D, "text_width": D})
    return registry.build("objective", {"type": "feature_regression", "name": "ifr", "view": "masked", **params},
                          context)


def fake_context() -> SimpleNamespace:
    """A visible-only student view (patches 2 and 0 kept) and a full-grid teacher view."""
    g = torch.Generator().manual_seed(0)
    ids_keep = torch.tensor([[2, 0], [1, 3]])
    mask = MaskingOutput(torch.ones(B, N, dtype=torch.bool).scatter(1, ids_keep, False), ids_keep, None)
    text = TextEncoding(torch.randn(B, 3, D, generator=g), torch.ones(B, 3))
    student = SimpleNamespace(image=ImageEncoding(torch.randn(B, 1 + K, D, generator=g, requires_grad=True),
                                                  "visible", mask),
                              text=text, image_mask=mask)
    teacher = SimpleNamespace(image=ImageEncoding(torch.randn(B, 1 + N, D, generator=g), "full"), text=text,
                              image_mask=None)
    return SimpleNamespace(view={"masked": student}.__getitem__, teacher_view={"full": teacher}.__getitem__)


def test_cls_l1_is_vlmae_ifr(registry):
    ifr = build(registry)
    assert ifr.requires_teacher
    ctx = fake_context()
    out = ifr(ctx)
    student, teacher = ctx.view("masked").image.tokens[:, 0], ctx.teacher_view("full").image.tokens[:, 0]
    assert out.loss.item() == pytest.approx((student - teacher).abs().mean().item(), rel=1e-6)
    out.loss.backward()
    assert ctx.view("masked").image.tokens.grad[:, 0].abs().sum() > 0  # only the student gets gradient
    assert ctx.view("masked").image.tokens.grad[:, 1:].abs().sum() == 0


def test_patches_compare_teacher_tokens_at_kept_positions(registry):
    ifr = build(registry, token="patches", loss="mse")
    ctx = fake_context()
    student = ctx.view("masked").image.tokens[:, 1:]
    teacher = ctx.teacher_view("full").image.tokens[:, 1:]
    expected = torch.stack([teacher[0, [2, 0]], teacher[1, [1, 3]]])  # [B,K,D]
    assert ifr(ctx).loss.item() == pytest.approx(((student - expected) ** 2).mean().item(), rel=1e-6)


def test_head_predicts_before_the_loss(registry):
    ifr = build(registry, head={"type": "linear"})
    ctx = fake_context()
    pred = ifr.head(ctx.view("masked").image.tokens[:, 0])
    target = ctx.teacher_view("full").image.tokens[:, 0]
    assert ifr(ctx).loss.item() == pytest.approx((pred - target).abs().mean().item(), rel=1e-6)


def test_masked_teacher_view_is_refused_for_patches(registry):
    ifr = build(registry, token="patches", teacher_view="masked")
    ctx = fake_context()
    ctx.teacher_view = ctx.view
    with pytest.raises(RuntimeError, match="must keep every patch"):
        ifr(ctx)
