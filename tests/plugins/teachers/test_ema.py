"""Teacher ``ema``: the EMA update by hand, the momentum ramp, buffers, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from framework.registry import BuildContext, ComponentBuildError, Registry
from framework_plugins import teachers
from framework_plugins.teachers.ema import momentum_at


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.register_plugin(teachers, name="teachers", distribution="framework==test")
    return reg


class Student(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.image_encoder = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
        self.text_encoder = nn.Linear(2, 2)
        self.objectives = nn.ModuleDict({"itc": nn.ModuleDict({"image_proj": nn.Linear(4, 2)})})


def build(registry: Registry, student: nn.Module, **params):
    config = {"type": "ema", "modules": ["image_encoder", "objectives.itc.image_proj"], **params}
    return registry.build("teacher", config, BuildContext(registry, {"student": student}))


def test_update_is_ema_of_the_students_and_copies_buffers(registry):
    torch.manual_seed(0)
    student = Student()
    teacher = build(registry, student, momentum=0.9)
    expected = {k: v.clone() for k, v in teacher.module("image_encoder").state_dict().items()}
    for step in range(3):
        with torch.no_grad():
            for p in student.parameters():
                p.add_(torch.randn_like(p))
            student.image_encoder[1].running_mean.add_(1.0)
        teacher.update(student, step)
        current = student.image_encoder.state_dict()
        for key in expected:
            if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
                expected[key] = current[key].clone()
            else:
                expected[key] = 0.9 * expected[key] + 0.1 * current[key]
    for key, value in teacher.module("image_encoder").state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=1e-6, atol=1e-6)
    assert not any(p.requires_grad for p in teacher.parameters())
    assert "copies.objectives__itc__image_proj.weight" in teacher.state_dict()


def test_cosine_ramp():
    assert momentum_at(7, start=0.995, final=None, ramp_steps=10) == 0.995
    assert momentum_at(0, start=0.99, final=1.0, ramp_steps=10) == pytest.approx(0.99)
    assert momentum_at(5, start=0.99, final=1.0, ramp_steps=10) == pytest.approx(0.995)
    assert momentum_at(50, start=0.99, final=1.0, ramp_steps=10) == pytest.approx(1.0)
    k = 3
    assert momentum_at(k, start=0.9, final=0.99, ramp_steps=10) == pytest.approx(
        0.99 - 0.09 * (1 + math.cos(math.pi * k / 10)) / 2)


def test_ramp_reaches_the_update(registry):
    student = Student()
    teacher = build(registry, student, momentum=0.5, final_momentum=1.0, ramp_steps=1)
    before = teacher.module("objectives.itc.image_proj").weight.clone()
    with torch.no_grad():
        student.objectives.itc.image_proj.weight.add_(1.0)
    teacher.update(student, step=1)  # momentum 1.0 at the end of the ramp: no change
    torch.testing.assert_close(teacher.module("objectives.itc.image_proj").weight, before)


def test_unknown_paths_are_clear_errors(registry):
    with pytest.raises(ComponentBuildError, match="not a module of the model"):
        registry.build("teacher", {"type": "ema", "modules": ["image_encdoer"]},
                       BuildContext(registry, {"student": Student()}))
    teacher = build(registry, Student())
    with pytest.raises(KeyError, match="add it to model.teacher.modules"):
        teacher.module("fusion")
