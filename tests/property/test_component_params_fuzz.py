"""Params drawn from each registered component's own schema either build a model that
runs a forward pass or raise a clear error; anything else means the schema admits
params the component cannot take.

Params come from :func:`from_schema`, a generator for the JSON-Schema subset params
schemas use (hypothesis-jsonschema does not run with this hypothesis version). Each
component is fuzzed where a tiny recipe of the repository uses it: its params are
replaced by generated ones (nested components and references to other recipe sections
keep the recipe's values; integers are capped at 64 and other numbers at 8 so that
models stay small), then the recipe is validated, the model built and one micro-batch
of 4 run forward (data are built once per recipe unless the component is a dataset or
tokenizer). Components that no tiny recipe uses are listed by
:func:`test_every_component_is_fuzzed_or_listed`.
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework import data as data_lib
from framework.assemble import assemble
from framework.distributed import init_distributed
from framework.recipe import RecipeError, load_recipe
from framework.registry import COMPONENT_KEYWORD, RegistryError, default_registry
from framework.validation import (
    REF_KEYWORD,
    RecipeValidationError,
    _walk,
    core_schema,
    validate_recipe,
)
from tests.helpers import RECIPES

CLEAR_ERRORS = (RecipeValidationError, RecipeError, RegistryError, ValueError, FileNotFoundError)
KNOWN_SCHEMA_BUGS = {  # (kind, name): the fix needed, in files this test does not own
}
INT_CAP = 64
FLOAT_CAP = 8.0
BASES = sorted(RECIPES.glob("*tiny.json"))
NOT_FUZZED = {  # (kind, name): why no tiny recipe can carry it
    ("dataset", "coco_captions"): "needs annotation files on disk",
    ("dataset", "flickr30k"): "needs caption files on disk",
    ("dataset", "image_folder"): "needs an image directory",
    ("dataset", "karpathy"): "needs a Karpathy split file and images on disk",
    ("dataset", "manifest"): "needs a manifest file",
    ("dataset", "text_lines"): "needs a text file",
    ("dataset", "webdataset"): "needs tar shards",
    ("tokenizer", "pretrained"): "needs a saved tokenizer directory",
    ("image_masking", "region"): "no tiny recipe uses it (vlmae-region-masking.json)",
    ("target", "discrete_tokens"): "no tiny recipe uses it (needs a trained image tokenizer)",
    ("schedule", "constant"): "no tiny recipe uses it (tests/framework/test_engine_optim.py pins its curve)",
    **{("augment", name): "no tiny recipe uses it (tests/plugins/augment runs it from its defaults)"
       for name in ("hflip", "colour_jitter", "grayscale", "gaussian_blur", "randaugment", "random_resized_crop")},
    **{("evaluator", name): "built by `framework eval`, not by the model"
       for name in ("classification", "linear_probe", "reconstruction", "retrieval", "zero_shot")},
}


def parse_path(path: str) -> tuple:
    return tuple(int(i) if i else k for k, i in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path))


@lru_cache(maxsize=1)
def component_sites() -> dict[tuple[str, str], tuple[str, tuple]]:
    """(kind, name) -> (tiny recipe, path of its config there), first occurrence."""
    registry = default_registry()
    sites: dict[tuple[str, str], tuple[str, tuple]] = {}

    def visit(schema: Any, instance: Any, prefix: str, recipe_file: str, recipe: dict) -> None:
        for node, value, where in _walk(schema, instance, prefix):
            if COMPONENT_KEYWORD in node and isinstance(value, dict):
                key = (node[COMPONENT_KEYWORD], value["type"])
                sites.setdefault(key, (recipe_file, parse_path(where)))
                params_schema = registry.get(*key).schema
                visit(params_schema, value, where, recipe_file, recipe)

    for base in BASES:
        recipe = validate_recipe(load_recipe(base), registry)
        visit(core_schema(), recipe, "$", base.name, recipe)
    return sites


def generation_schema(schema: Any) -> Any:
    """``schema`` without nested-component and reference properties, integers capped."""
    if isinstance(schema, dict):
        out = {k: generation_schema(v) for k, v in schema.items() if k != "default"}
        if isinstance(schema.get("properties"), dict):
            skipped = {k for k, v in schema["properties"].items() if COMPONENT_KEYWORD in v or REF_KEYWORD in v}
            out["properties"] = {k: v for k, v in out["properties"].items() if k not in skipped}
            if "required" in out:
                out["required"] = [k for k in out["required"] if k not in skipped]
        types = schema.get("type") if isinstance(schema.get("type"), list) else [schema.get("type")]
        numeric = [t for t in types if t in ("integer", "number")]
        if numeric and "maximum" not in schema and "exclusiveMaximum" not in schema:  # also ["integer", "null"]
            out["maximum"] = max(INT_CAP if numeric[0] == "integer" else FLOAT_CAP, schema.get("minimum", 0))
        if schema.get("type") == "array" and "maxItems" not in schema:
            out["maxItems"] = 4
        return out
    if isinstance(schema, list):
        return [generation_schema(v) for v in schema]
    return schema


def from_schema(schema: dict) -> st.SearchStrategy:
    """Instances of ``schema`` (type, enum, const, anyOf/oneOf, bounds, multipleOf,
    pattern, items, properties/required; no additional properties)."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema({**{k: v for k, v in schema.items() if k != key}, **option})
                              for option in schema[key]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}) for k in kind])
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        if kind == "integer":
            low = None if low is None else int(low) + ("exclusiveMinimum" in schema and "minimum" not in schema)
            high = None if high is None else int(high) - ("exclusiveMaximum" in schema and "maximum" not in schema)
            values = st.integers(low, high)
        else:
            values = st.floats(low, high, allow_nan=False, allow_infinity=False,
                               exclude_min="minimum" not in schema, exclude_max="maximum" not in schema)
        step = schema.get("multipleOf")
        return values if step is None else values.map(lambda v: type(step)(round(v / step) * step)).filter(
            lambda v: (low is None or v >= low) and (high is None or v <= high))
    if kind == "string":
        return st.from_regex(schema["pattern"], fullmatch=True) if "pattern" in schema else st.text(max_size=8)
    if kind == "array":
        items = from_schema(schema.get("items", {"type": "integer"}))
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=schema.get("maxItems", 4))
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = {k: from_schema(v) for k, v in props.items() if k in schema.get("required", [])}
        optional = {k: from_schema(v) for k, v in props.items() if k not in required}
        return st.fixed_dictionaries(required, optional=optional)
    return st.none() | st.booleans() | st.integers() | st.text(max_size=8)


def substitute(recipe: dict, path: tuple, params: dict, kept: dict) -> dict:
    out = copy.deepcopy(recipe)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = {"type": kept["type"], **{k: v for k, v in kept.items() if k not in params}, **params}
    return out


def keep_nested(schema: dict, config: dict) -> dict:
    """The entries of ``config`` that the generated params do not replace."""
    props = schema.get("properties", {})
    return {k: v for k, v in config.items()
            if k == "type" or COMPONENT_KEYWORD in props.get(k, {}) or REF_KEYWORD in props.get(k, {})}


DATA_KINDS = {"dataset", "tokenizer", "augment"}


def build_data(recipe: dict) -> tuple[Any, dict]:
    """The tokenizer and one micro-batch of 4 of a validated recipe."""
    registry = default_registry()
    dataset = data_lib.build_dataset(recipe, registry, split="train")
    tokenizer = data_lib.build_tokenizer(recipe, registry, dataset)
    loader, _ = data_lib.build_train_loader(recipe, dataset, tokenizer, rank=0, world_size=1, micro_batch=4, seed=0)
    batch = next(iter(loader))
    batch.pop("bad_samples")
    return tokenizer, batch


@lru_cache(maxsize=None)
def base_data(recipe_file: str) -> tuple[Any, dict]:
    return build_data(validate_recipe(load_recipe(RECIPES / recipe_file), default_registry()))


def build_and_run(recipe: dict, recipe_file: str, kind: str) -> None:
    """Validate, build data (unless reused) and model, and run one micro-batch forward."""
    registry = default_registry()
    recipe = validate_recipe(recipe, registry)
    tokenizer, batch = build_data(recipe) if kind in DATA_KINDS else base_data(recipe_file)
    student, teacher = assemble(recipe, registry, tokenizer)
    with torch.no_grad():
        student(batch, generator=torch.Generator().manual_seed(0), teacher=teacher)


@pytest.fixture(scope="module", autouse=True)
def process_group() -> None:
    init_distributed()  # objectives gather over ranks, even a one-process group


def test_every_component_is_fuzzed_or_listed():
    registry = default_registry()
    uncovered = {(s.kind, s.name) for s in registry.specs() if s.provider.startswith("framework==")}
    uncovered -= set(component_sites()) | set(NOT_FUZZED)
    assert not uncovered, f"add these to a tiny recipe or to NOT_FUZZED with a reason: {sorted(uncovered)}"


@pytest.mark.parametrize("kind,name", [
    pytest.param(*key, marks=pytest.mark.xfail(reason=KNOWN_SCHEMA_BUGS[key], strict=False))
    if key in KNOWN_SCHEMA_BUGS else key for key in sorted(component_sites())])
def test_params_from_the_schema_build_or_fail_clearly(kind, name):
    recipe_file, path = component_sites()[(kind, name)]
    base = validate_recipe(load_recipe(RECIPES / recipe_file), default_registry())
    config = base
    for part in path:
        config = config[part]
    schema = default_registry().get(kind, name).schema
    kept = keep_nested(schema, config)

    @settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
    @given(params=from_schema(generation_schema(schema)))
    def check(params: dict) -> None:
        try:
            build_and_run(substitute(base, path, params, kept), recipe_file, kind)
        except CLEAR_ERRORS as exc:
            assert str(exc).strip(), f"{type(exc).__name__} without a message"

    check()
