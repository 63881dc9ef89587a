"""The EMA teacher satisfies the typed teacher protocol the step context is written against."""

from __future__ import annotations

from framework.build import build_run
from framework.context import Teacher
from framework.registry import default_registry
from tests.helpers import RECIPES, tiny_recipe


def test_the_ema_teacher_is_a_teacher():
    recipe = tiny_recipe("data.train.samples=32", path=RECIPES / "mamo-tiny.json")
    teacher = build_run(recipe, default_registry()).teacher
    assert isinstance(teacher, Teacher)
    backbone = teacher.backbone()
    assert backbone.image_encoder is not None and backbone.text_encoder is not None
