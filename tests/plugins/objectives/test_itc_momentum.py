"""Objective ``itc`` in momentum mode (ALBEF): the queue's contents and the distilled loss
against a float64 hand computation on a tiny batch."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from framework.registry import BuildContext, Registry
from framework.types import ImageEncoding, TextEncoding
from framework_plugins import objectives
from framework_plugins.objectives.itc import FeatureQueue, ImageTextContrastive

B, D, E = 3, 6, 4
TEMPERATURE = 0.1


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.register_plugin(objectives, name="objectives", distribution="framework==test")
    return reg


def build_itc(registry: Registry, **params) -> ImageTextContrastive:
    context = BuildContext(registry, {"image_width": D, "text_width": D})
    config = {"type": "itc", "name": "itc", "view": "masked", "embed_dim": E, "temperature": TEMPERATURE, **params}
    return registry.build("objective", config, context)


def encoded(g: torch.Generator) -> SimpleNamespace:
    """A view with random image/text [CLS] tokens (only [CLS] is read by ITC)."""
    image = ImageEncoding(torch.randn(B, 2, D, generator=g, dtype=torch.float64).float(), "full")
    text = TextEncoding(torch.randn(B, 5, D, generator=g, dtype=torch.float64).float(), torch.ones(B, 5))
    return SimpleNamespace(image=image, text=text)


def fake_context(seed: int, teacher_proj: dict[str, nn.Module]) -> SimpleNamespace:
    """What ITC reads from a StepContext: student and teacher views and the teacher's projections."""
    g = torch.Generator().manual_seed(seed)
    student, teacher = encoded(g), encoded(g)
    views = {"masked": student}
    teacher_views = {"full": teacher}
    return SimpleNamespace(view=views.__getitem__, teacher_view=teacher_views.__getitem__,
                           teacher_module=lambda path: teacher_proj[path.rsplit(".", 1)[1]], shared={})


def teacher_copies(itc: ImageTextContrastive, seed: int) -> dict[str, nn.Module]:
    """Teacher projections that differ from the student's (as after some EMA steps)."""
    g = torch.Generator().manual_seed(seed)
    copies = {}
    for name in ("image_proj", "text_proj"):
        layer = nn.Linear(D, E)
        with torch.no_grad():
            layer.weight.copy_(getattr(itc, name).weight + 0.3 * torch.randn(E, D, generator=g))
            layer.bias.copy_(getattr(itc, name).bias)
        copies[name] = layer
    return copies


def embed64(layer: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Normalised projection in float64, computed without the objective's code."""
    w, b = layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy()
    y = x.double().numpy() @ w.T + b
    return y / np.linalg.norm(y, axis=1, keepdims=True)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def hand_loss(ctx, itc, copies, alpha, queue_image, queue_text):
    """ALBEF's ITC (Li et al. 2021 Eq. 1-2 with momentum distillation), row by row."""
    s, t = ctx.view("masked"), ctx.teacher_view("full")
    si, st = embed64(itc.image_proj, s.image.cls), embed64(itc.text_proj, s.text.cls)
    ti, tt = embed64(copies["image_proj"], t.image.cls), embed64(copies["text_proj"], t.text.cls)
    keys_i, keys_t = np.concatenate([ti, queue_image]), np.concatenate([tt, queue_text])
    scale = 1 / TEMPERATURE
    total = 0.0
    for student, teacher, keys in ((si, ti, keys_t), (st, tt, keys_i)):
        soft = softmax(scale * teacher @ keys.T)
        for row in range(B):
            target = alpha * soft[row] + (1 - alpha) * np.eye(len(keys))[row]
            log_p = scale * student[row] @ keys.T
            log_p = log_p - math.log(np.exp(log_p).sum())
            total += -(target * log_p).sum() / B
    return total / 2, ti, tt


def test_queue_is_a_ring_buffer():
    queue = FeatureQueue(5, 2)
    initial = queue.image.clone()
    torch.testing.assert_close(initial.norm(dim=-1), torch.ones(5))  # random unit vectors (ALBEF)
    assert torch.equal(initial, FeatureQueue(5, 2).image)  # seeded: the same on every rank
    first, second = torch.arange(6.).reshape(3, 2), 10 + torch.arange(6.).reshape(3, 2)
    queue.push(first, -first)
    assert torch.equal(queue.image, torch.cat([first, initial[3:]])) and queue.ptr.item() == 3
    queue.push(second, -second)
    # Slots 3, 4 take the first two rows of `second`, slot 0 wraps round to its third.
    assert torch.equal(queue.image, torch.stack([second[2], first[1], first[2], second[0], second[1]]))
    assert torch.equal(queue.text, -queue.image)
    assert queue.ptr.item() == 1
    queue.push(torch.arange(14.).reshape(7, 2), torch.zeros(7, 2))  # more rows than slots: the last 5 stay
    assert sorted(queue.image[:, 0].tolist()) == [4., 6., 8., 10., 12.]


@pytest.mark.parametrize("alpha", [0.4, 0.0])
def test_distilled_loss_and_queue_match_hand_computation(registry, alpha):
    torch.manual_seed(0)
    itc = build_itc(registry, distill_alpha=alpha, queue_size=5, teacher_view="full")
    assert itc.requires_teacher
    copies = teacher_copies(itc, seed=1)
    initial_image, initial_text = itc.queue.image.double().numpy().copy(), itc.queue.text.double().numpy().copy()
    ctx1 = fake_context(2, copies)
    loss1 = itc(ctx1).loss
    expected1, ti1, tt1 = hand_loss(ctx1, itc, copies, alpha, initial_image, initial_text)
    assert loss1.item() == pytest.approx(expected1, rel=1e-5)
    # The queue now holds step 1's teacher embeddings in slots 0-2.
    assert np.allclose(itc.queue.image[:B].double().numpy(), ti1, atol=1e-6)
    assert np.allclose(itc.queue.text[:B].double().numpy(), tt1, atol=1e-6)
    ctx2 = fake_context(3, copies)
    loss2 = itc(ctx2).loss
    queue_image = np.concatenate([ti1, initial_image[B:]])
    queue_text = np.concatenate([tt1, initial_text[B:]])
    expected2, ti2, _ = hand_loss(ctx2, itc, copies, alpha, queue_image, queue_text)
    assert loss2.item() == pytest.approx(expected2, rel=1e-5)
    left = ctx2.shared["itc"]  # the Similarities ITM reads, keyed by this objective's name
    assert left.image_to_text.shape == left.text_to_image.shape == (B, B + 5) and left.offset == 0
    # Slots 3, 4 and (wrapping) 0 hold step 2's embeddings; 1, 2 still step 1's.
    assert np.allclose(itc.queue.image[[3, 4, 0, 1, 2]].double().numpy(), np.concatenate([ti2, ti1[1:]]), atol=1e-6)


def test_gradient_reaches_student_only(registry):
    itc = build_itc(registry, distill_alpha=0.4, queue_size=0, teacher_view="full")
    copies = teacher_copies(itc, seed=1)
    itc(fake_context(4, copies)).loss.backward()
    assert itc.image_proj.weight.grad.abs().sum() > 0 and itc.text_proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for layer in copies.values() for p in layer.parameters())


def test_plain_mode_needs_no_teacher_and_equals_cross_entropy(registry):
    itc = build_itc(registry)
    assert not itc.requires_teacher and itc.queue is None
    ctx = fake_context(5, {})
    loss = itc(ctx).loss
    si, st = embed64(itc.image_proj, ctx.view("masked").image.cls), embed64(itc.text_proj, ctx.view("masked").text.cls)
    logits = si @ st.T / TEMPERATURE
    ce = lambda z: -np.mean(np.diag(z) - np.log(np.exp(z).sum(axis=1)))  # noqa: E731
    assert loss.item() == pytest.approx((ce(logits) + ce(logits.T)) / 2, rel=1e-5)


def test_teacher_view_without_momentum_is_refused(registry):
    with pytest.raises(Exception, match="teacher_view is set but neither distill_alpha nor queue_size"):
        build_itc(registry, teacher_view="full")
