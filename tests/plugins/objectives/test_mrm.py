"""Objective ``mrm``: the loss by hand, stop-gradient on the target, Table 7/8 options, and the
EMA target network of the MAMO tiny recipe (no gradients, update = hand-computed EMA)."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace
from typing import Optional

import pytest
import torch
from torch import nn

from framework.assemble import assemble
from framework.context import EncodedView
from framework.registry import BuildContext, Registry
from framework.types import (
    FusedEncoding,
    ImageEncoding,
    MaskingOutput,
    TextEncoding,
    TextMaskingOutput,
)
from framework_plugins import decoders, objectives
from tests.helpers import RECIPES, tiny_recipe

B, N, T, D, DIM = 2, 4, 5, 6, 3


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.register_plugin(objectives, name="objectives", distribution="framework==test")
    reg.register_plugin(decoders, name="decoders", distribution="framework==test")
    return reg


def build_mrm(registry: Registry, image_width: int = D, text_width: int = D, **params) -> nn.Module:
    context = BuildContext(registry, {"fused_image_width": image_width, "fused_text_width": text_width})
    return registry.build("objective", {"type": "mrm", "name": "mrm", "dim": DIM, **params}, context)


def make_view(name: str, image: torch.Tensor, text: torch.Tensor, image_mask: Optional[torch.Tensor] = None,
              text_mask: Optional[torch.Tensor] = None) -> EncodedView:
    """A view whose fused streams are ``image`` [B,1+N,D] and ``text`` [B,T,D] as given."""
    attention = torch.ones(B, T, dtype=torch.long)
    masking = MaskingOutput(image_mask) if image_mask is not None else None
    text_masking = None
    if text_mask is not None:
        ids = torch.zeros(B, T, dtype=torch.long)
        text_masking = TextMaskingOutput(ids, torch.where(text_mask, ids, -100), text_mask)
    fused = FusedEncoding(image=image, text=text, pooled=image[:, 0])
    return EncodedView(name, ImageEncoding(image, "full", masking, (1, N)), TextEncoding(text, attention, text_masking),
                       masking, text_masking, _fused=fused)


class FakeContext:
    """The StepContext surface MRM reads: student views, teacher views and the teacher's projector."""

    def __init__(self, views: dict[str, EncodedView], teacher_views: dict[str, EncodedView],
                 teacher_projector: Optional[nn.Module]) -> None:
        self.views, self.teacher_views, self.teacher_projector = views, teacher_views, teacher_projector
        self.asked: list[str] = []

    def view(self, name: str) -> EncodedView:
        self.asked.append(name)
        return self.views[name]

    def teacher_view(self, name: str) -> EncodedView:
        return self.teacher_views[name]

    def teacher_module(self, path: str) -> nn.Module:
        assert path == "objectives.mrm.projector"
        return self.teacher_projector


def scenario(seed: int = 0) -> SimpleNamespace:
    """Masked views, a student full view and a teacher full view with known tensors."""
    g = torch.Generator().manual_seed(seed)
    image_mask = torch.tensor([[True, False, True, False], [False, False, False, True]])
    text_mask = torch.tensor([[False, True, False, False, False], [False, False, True, True, False]])
    online_image = torch.randn(B, 1 + N, D, generator=g, requires_grad=True)
    online_text = torch.randn(B, T, D, generator=g, requires_grad=True)
    full_image = torch.randn(B, 1 + N, D, generator=g, requires_grad=True)
    full_text = torch.randn(B, T, D, generator=g, requires_grad=True)
    teacher_image, teacher_text = torch.randn(B, 1 + N, D, generator=g), torch.randn(B, T, D, generator=g)
    other = torch.randn(B, T, D, generator=g)
    views = {
        "masked_image": make_view("masked_image", online_image, other, image_mask=image_mask),
        "masked_text": make_view("masked_text", torch.randn(B, 1 + N, D, generator=g), online_text,
                                 text_mask=text_mask),
        "full": make_view("full", full_image, full_text),
    }
    return SimpleNamespace(views=views, teacher_views={"full": make_view("full", teacher_image, teacher_text)},
                           image_mask=image_mask, text_mask=text_mask, online_image=online_image,
                           online_text=online_text, full_image=full_image, full_text=full_text,
                           teacher_image=teacher_image, teacher_text=teacher_text)


def mlp_by_hand(mlp: nn.Module, x: list[float]) -> list[float]:
    """timm Mlp fc1 -> exact GELU -> fc2 on one vector, in plain Python."""
    w1, b1, w2, b2 = (t.tolist() for t in (mlp.fc1.weight, mlp.fc1.bias, mlp.fc2.weight, mlp.fc2.bias))
    hidden = [sum(w * v for w, v in zip(row, x)) + b for row, b in zip(w1, b1)]
    hidden = [h * 0.5 * (1 + math.erf(h / math.sqrt(2))) for h in hidden]
    return [sum(w * v for w, v in zip(row, hidden)) + b for row, b in zip(w2, b2)]


def mse_by_hand(mrm: nn.Module, teacher_g: nn.Module, online: torch.Tensor, target: torch.Tensor,
                positions: list[tuple[int, int]]) -> float:
    total = 0.0
    for b, n in positions:
        pred = mlp_by_hand(mrm.projector, online[b, n].tolist())
        if mrm.predictor is not None:
            pred = mlp_by_hand(mrm.predictor, pred)
        goal = mlp_by_hand(teacher_g, target[b, n].tolist())
        total += sum((p - q) ** 2 for p, q in zip(pred, goal))
    return total / (len(positions) * DIM)


def masked_positions(mask: torch.Tensor, offset: int) -> list[tuple[int, int]]:
    return [(b, n + offset) for b, n in mask.nonzero().tolist()]


def perturbed_copy(module: nn.Module) -> nn.Module:
    other = copy.deepcopy(module)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.3)
    return other


@pytest.mark.parametrize("with_predictor", [True, False])
def test_loss_matches_hand_computation_on_both_modalities(registry, with_predictor):
    torch.manual_seed(0)
    mrm = build_mrm(registry, with_predictor=with_predictor)
    assert (mrm.predictor is not None) == with_predictor
    s = scenario()
    teacher_g = perturbed_copy(mrm.projector)
    out = mrm(FakeContext(s.views, s.teacher_views, teacher_g))
    image = mse_by_hand(mrm, teacher_g, s.online_image, s.teacher_image, masked_positions(s.image_mask, 1))
    text = mse_by_hand(mrm, teacher_g, s.online_text, s.teacher_text, masked_positions(s.text_mask, 0))
    assert out.metrics["image_loss"].item() == pytest.approx(image, rel=1e-5)
    assert out.metrics["text_loss"].item() == pytest.approx(text, rel=1e-5)
    assert out.loss.item() == pytest.approx(image + text, rel=1e-5)  # Eq. 1 sums the two views


def test_teacher_side_gets_no_gradient_and_the_online_side_does(registry):
    torch.manual_seed(0)
    mrm = build_mrm(registry)
    s = scenario()
    teacher_g = perturbed_copy(mrm.projector)
    mrm(FakeContext(s.views, s.teacher_views, teacher_g)).loss.backward()
    assert all(p.grad is None for p in teacher_g.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in mrm.parameters())
    grad = s.online_image.grad  # [B,1+N,D]: only masked patches are regressed
    expected_rows = torch.cat([torch.zeros(B, 1, dtype=torch.bool), s.image_mask], dim=1)
    assert torch.equal(grad.abs().sum(-1) > 0, expected_rows)
    assert torch.equal(s.online_text.grad.abs().sum(-1) > 0, s.text_mask)


def test_online_target_is_the_students_own_full_view_under_stop_gradient(registry):
    torch.manual_seed(0)
    mrm = build_mrm(registry, target="online")
    assert not mrm.requires_teacher
    s = scenario()
    out = mrm(FakeContext(s.views, {}, None))
    image = mse_by_hand(mrm, mrm.projector, s.online_image, s.full_image.detach(), masked_positions(s.image_mask, 1))
    assert out.metrics["image_loss"].item() == pytest.approx(image, rel=1e-5)
    out.loss.backward()
    assert s.full_image.grad is None and s.full_text.grad is None  # stop-gradient on the target branch


@pytest.mark.parametrize("modality", ["image", "text"])
def test_single_modality_reads_only_its_view(registry, modality):
    mrm = build_mrm(registry, modalities=modality)
    s = scenario()
    ctx = FakeContext(s.views, s.teacher_views, perturbed_copy(mrm.projector))
    out = mrm(ctx)
    assert set(out.metrics) == {f"{modality}_loss", f"{modality}_target_std"}
    assert set(ctx.asked) == {f"masked_{modality}"}
    assert out.loss.item() == pytest.approx(out.metrics[f"{modality}_loss"].item())


def test_shared_projector_needs_equal_stream_widths(registry):
    with pytest.raises(ValueError, match="shares one projector"):
        build_mrm(registry, image_width=D, text_width=D + 2)
    assert build_mrm(registry, image_width=D, text_width=D + 2, modalities="text").projector.fc1.in_features == D + 2


def test_clear_errors_for_views_that_do_not_fit(registry):
    mrm = build_mrm(registry, image_view="full")
    s = scenario()
    with pytest.raises(RuntimeError, match="masks no image"):
        mrm(FakeContext(s.views, s.teacher_views, perturbed_copy(mrm.projector)))
    mrm = build_mrm(registry, target_view="masked_text", target="online")
    with pytest.raises(RuntimeError, match="is masked"):
        mrm(FakeContext(s.views, s.teacher_views, None))


# --- the EMA target network of the MAMO tiny recipe --------------------------------------


@pytest.fixture(scope="module")
def mamo_tiny():
    from framework.registry import default_registry
    from tests.helpers import example_batch

    recipe = tiny_recipe(path=RECIPES / "mamo-tiny.json")
    registry = default_registry()
    torch.manual_seed(0)
    batch, tokenizer = example_batch(recipe, registry, batch_size=4)
    student, teacher = assemble(recipe, registry, tokenizer)
    return SimpleNamespace(student=student, teacher=teacher, batch=batch)


def test_target_network_receives_no_gradients(mamo_tiny):
    student, teacher = mamo_tiny.student, mamo_tiny.teacher
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    out = student(mamo_tiny.batch, generator=torch.Generator().manual_seed(0), teacher=teacher)
    out.loss.backward()
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    projector = student.objectives["mrm"].projector
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in projector.parameters())
    student.zero_grad(set_to_none=True)


def test_ema_update_matches_hand_computation(mamo_tiny):
    student, teacher = mamo_tiny.student, mamo_tiny.teacher
    assert teacher.paths == ["image_encoder", "text_encoder", "fusion", "objectives.mrm.projector"]
    m = teacher.momentum
    assert m == 0.995
    with torch.no_grad():
        for p in student.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel() % 997)) * 0.1)
    old = {path: [t.clone() for t in teacher.module(path).parameters()] for path in teacher.paths}
    new = {path: [p.detach().clone() for p in student.get_submodule(path).parameters()] for path in teacher.paths}
    teacher.update(student, step=0)
    for path in teacher.paths:
        for got, t, s in zip(teacher.module(path).parameters(), old[path], new[path], strict=True):
            torch.testing.assert_close(got, m * t + (1 - m) * s, rtol=0, atol=1e-6)
