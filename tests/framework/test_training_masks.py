"""`framework masks` draws exactly the masks the training step draws (same seed, same step)."""

from __future__ import annotations

import pytest
import torch

from framework.build import build_run
from framework.context import StepContext
from framework.registry import default_registry
from framework.step import mask_generator, training_masks
from tests.helpers import RECIPES, example_batch, tiny_recipe

TINY = sorted(p.name for p in RECIPES.glob("*tiny*.json") if not p.name.startswith("tokenizer-"))


def _equal(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return all(torch.equal(x, y) if torch.is_tensor(x) else x == y
               for x, y in zip(vars(a).values(), vars(b).values()))


@pytest.mark.parametrize("name", TINY)
def test_the_pictured_masks_are_the_training_steps_masks(name, monkeypatch):
    registry = default_registry()
    recipe = tiny_recipe("train.micro_batch=8", "train.global_batch=8", path=RECIPES / name)
    built = build_run(recipe, registry)
    batch, _ = example_batch(recipe, registry, batch_size=8)
    drawn: dict[str, tuple] = {}
    original = StepContext.masks

    def recording(self, view):
        out = original(self, view)
        drawn.setdefault(view, out)
        return out

    monkeypatch.setattr(StepContext, "masks", recording)
    built.model(batch, generator=mask_generator(recipe["train"]["seed"], 3, 0), teacher=built.teacher)
    monkeypatch.setattr(StepContext, "masks", original)
    pictured = training_masks(built.model, batch, recipe["train"]["seed"], step=3)
    assert drawn and set(drawn) <= set(pictured)
    for view, (image_mask, text_mask) in drawn.items():
        assert _equal(image_mask, pictured[view][0]) and _equal(text_mask, pictured[view][1]), view
    other_step = training_masks(built.model, batch, recipe["train"]["seed"], step=4)
    masked = [v for v, (i, _) in pictured.items() if i is not None]
    assert not masked or not all(_equal(pictured[v][0], other_step[v][0]) for v in masked)
