"""Task head ``classifier`` and objective ``classification``: shapes, the MLP form, the loss
by hand against the batch's labels, and the errors a recipe author sees."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from framework.registry import BuildContext, Registry
from framework.types import FusedEncoding, ImageEncoding, TextEncoding
from framework_plugins import heads, objectives

B, D, C = 6, 8, 3


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.register_plugin(heads, name="heads", distribution="framework==test")
    reg.register_plugin(objectives, name="objectives", distribution="framework==test")
    return reg


def test_classifier_is_linear_or_an_mlp(registry):
    context = BuildContext(registry, {"in_dim": D, "classes": C})
    linear = registry.build("task_head", {"type": "classifier"}, context)
    mlp = registry.build("task_head", {"type": "classifier", "hidden": 16, "layernorm": True, "dropout": 0.1}, context)
    assert [type(m).__name__ for m in linear.layers] == ["Linear"]
    assert [type(m).__name__ for m in mlp.layers] == ["LayerNorm", "Dropout", "Linear", "ReLU", "Linear"]
    x = torch.randn(B, D, requires_grad=True)
    out = mlp(x)
    assert out.shape == (B, C)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    with pytest.raises(AssertionError, match=r"expects features \[B,8\]"):
        linear(torch.randn(B, D + 1))


def build(registry: Registry, source: str = "fused", **extra) -> torch.nn.Module:
    context = BuildContext(registry, {"fusion_width": D, "image_width": D, "text_width": D})
    cfg = {"type": "classification", "name": "cls", "view": "full", "classes": C, "source": source, **extra}
    return registry.build("objective", cfg, context)


def fake_context(labels: torch.Tensor | None) -> SimpleNamespace:
    g = torch.Generator().manual_seed(0)
    image = ImageEncoding(torch.randn(B, 5, D, generator=g))
    text = TextEncoding(torch.randn(B, 4, D, generator=g), torch.ones(B, 4, dtype=torch.long))
    view = SimpleNamespace(image=image, text=text,
                           fused=FusedEncoding(None, text.tokens, torch.randn(B, D, generator=g)))
    batch = {"input_ids": torch.zeros(B, 4, dtype=torch.long)} | ({"label": labels} if labels is not None else {})
    return SimpleNamespace(view=lambda name: view, batch=batch, batch_size=B)


@pytest.mark.parametrize("source", ["fused", "image_cls", "image_mean", "text_cls"])
def test_loss_is_cross_entropy_of_the_head_on_the_chosen_feature(registry, source):
    objective = build(registry, source, label_smoothing=0.1)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    ctx = fake_context(labels)
    view = ctx.view("full")
    feature = {"fused": view.fused.pooled, "image_cls": view.image.tokens[:, 0],
               "image_mean": view.image.tokens[:, 1:].mean(1), "text_cls": view.text.tokens[:, 0]}[source]
    out = objective(ctx)
    want = F.cross_entropy(objective.head(feature), labels, label_smoothing=0.1)
    assert out.loss.item() == pytest.approx(want.item(), rel=1e-5)
    out.loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in objective.parameters())
    assert 0.0 <= out.metrics["accuracy"].item() <= 1.0


def test_ignored_labels_are_not_scored(registry):
    objective = build(registry)
    labels = torch.tensor([0, 1, -100, -100, -100, -100])
    ctx = fake_context(labels)
    logits = objective.head(ctx.view("full").fused.pooled)
    assert objective(ctx).loss.item() == pytest.approx(F.cross_entropy(logits[:2], labels[:2]).item(), rel=1e-5)


def test_unlabelled_batches_and_missing_fusion_are_clear_errors(registry):
    with pytest.raises(KeyError, match="needs labelled batches"):
        build(registry)(fake_context(None))
    context = BuildContext(registry, {"image_width": D, "text_width": D})
    with pytest.raises(Exception, match="needs model.fusion"):
        registry.build("objective", {"type": "classification", "name": "c", "view": "full", "classes": 2}, context)


def test_a_label_past_the_classes_is_a_clear_error(registry):
    with pytest.raises(ValueError, match="has classes=3 but a batch holds label 7"):
        build(registry)(fake_context(torch.tensor([0, 1, 2, 7, 1, 0])))
