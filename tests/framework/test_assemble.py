"""The assembler checks what objectives need from the recipe before any training."""

from __future__ import annotations

import pytest

from framework import data as data_lib
from framework.assemble import assemble
from framework.validation import RecipeValidationError
from tests.helpers import RECIPES, tiny_recipe


def build(recipe, registry):
    dataset = data_lib.build_dataset(recipe, registry)
    return assemble(recipe, registry, data_lib.build_tokenizer(recipe, registry, dataset))


def test_itm_before_itc_is_refused_at_its_similarities_from(registry):
    with pytest.raises(RecipeValidationError) as err:
        tiny_recipe('objectives=[{"type": "itm", "view": "full"}, {"type": "itc", "view": "full"}]')
    assert ("$.objectives[0].similarities_from: 'itc' is not defined in the objectives listed before this one"
            in str(err.value))


def test_teacher_reading_objective_without_teacher(registry):
    with pytest.raises(RecipeValidationError) as err:
        build(tiny_recipe('objectives=[{"type": "itc", "view": "full"}, {"type": "itm", "view": "full"}, '
                          '{"type": "mim", "view": "masked_image", "decoder": "pixels", '
                          '"target": {"type": "teacher_features"}}]'), registry)
    assert "$.objectives[2]: 'mim' reads teacher outputs; add model.teacher" in str(err.value)


def test_duplicate_objective_names_are_refused(registry):
    with pytest.raises(RecipeValidationError, match=r"\$\.objectives\[1\]: a second objective named 'itc'"):
        # validation builds
        tiny_recipe('objectives=[{"type": "itc", "view": "full"}, {"type": "itc", "view": "full"}]')


def test_teacher_must_keep_the_copies_objectives_read(registry):
    with pytest.raises(RecipeValidationError, match=r"\$\.model\.teacher\.modules: objective 'itc' reads the "
                                                    r"teacher's copy of 'objectives\.itc\.image_proj'"):
        tiny_recipe('model.teacher.modules=["image_encoder", "text_encoder"]', path=RECIPES / "vlmae-tiny.json")
    model, teacher = build(tiny_recipe(path=RECIPES / "vlmae-tiny.json"), registry)
    assert not any(p.requires_grad for p in teacher.parameters())
