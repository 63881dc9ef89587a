"""Validation reports every problem with its JSON path; the committed schema is current."""

from __future__ import annotations

import json

import jsonschema
import pytest

from framework.recipe import load_recipe
from framework.resources import schema_path
from framework.schema_gen import PROJECT_DISTRIBUTION, combined_schema
from framework.validation import RecipeValidationError, validate_recipe
from tests.helpers import RECIPES


def test_three_mistakes_are_reported_together_with_paths(registry):
    recipe = load_recipe(RECIPES / "tiny.json", [
        "objectives.0.tempreature=0.1",          # unknown key in a component
        "views.masked_image.image.ratio=1.5",   # out of range in a nested component
        "train.steps=0",                         # core schema
    ])
    with pytest.raises(RecipeValidationError) as err:
        validate_recipe(recipe, registry, source="tiny.json")
    lines = str(err.value).splitlines()[1:]
    assert len(lines) == 3, lines
    assert "tiny.json::$.objectives[0]: unknown key 'tempreature' (did you mean 'temperature'" in lines[0]
    assert "tiny.json::$.train.steps: 0 is less than the minimum of 1" in lines[1]
    assert "tiny.json::$.views.masked_image.image.ratio: 1.5" in lines[2]


def test_unknown_type_and_undefined_view_get_suggestions(registry):
    recipe = load_recipe(RECIPES / "tiny.json", ['objectives.1.type="mimm"', 'objectives.0.view="ful"'])
    with pytest.raises(RecipeValidationError) as err:
        validate_recipe(recipe, registry)
    text = str(err.value)
    assert "$.objectives[1].type: no objective named 'mimm' (did you mean 'mim'?)" in text
    assert "$.objectives[0].view: 'ful' is not defined in views (did you mean 'full'?)" in text


def test_nested_component_params_are_checked(registry):
    recipe = load_recipe(RECIPES / "tiny.json", ['objectives.1.target={"type": "pixels", "normalise": true}'])
    with pytest.raises(RecipeValidationError, match=r"\$\.objectives\[1\]\.target: unknown key 'normalise'"):
        validate_recipe(recipe, registry)


def test_defaults_are_filled_from_the_schema(registry):
    recipe = validate_recipe(load_recipe(RECIPES / "tiny.json"), registry)
    assert recipe["deepspeed"]["zero_stage"] == 0 and recipe["train"]["precision"] == "fp32"


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.json")), ids=lambda p: p.name)
def test_every_committed_recipe_validates(registry, path):
    validate_recipe(load_recipe(path), registry, source=path.name)


def test_committed_combined_schema_is_current(registry):
    committed = json.loads(schema_path("framework.schema.json").read_text())
    current = combined_schema(registry, distributions=[PROJECT_DISTRIBUTION])  # installed plugins stay out
    assert committed == current, "schemas/framework.schema.json is stale: run `framework schema`"


def test_combined_schema_accepts_the_tiny_recipe_and_rejects_a_bad_param(registry):
    schema = combined_schema(registry)
    validator = jsonschema.Draft202012Validator(schema)
    raw = json.loads((RECIPES / "tiny.json").read_text())
    assert not list(validator.iter_errors(raw))
    raw["objectives"][0]["embed_dim"] = "wide"
    assert list(validator.iter_errors(raw))
