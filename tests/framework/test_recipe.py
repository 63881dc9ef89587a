"""Recipe loading: extends chains, merge rules, --set overrides, hashing and diffs."""

from __future__ import annotations

import json

import pytest

from framework.recipe import (
    RecipeError,
    apply_override,
    deep_merge,
    diff,
    load_recipe,
    recipe_hash,
)


def write(path, data):
    path.write_text(json.dumps(data))
    return path


def test_extends_deep_merges_objects_and_replaces_lists(tmp_path):
    write(tmp_path / "base.json", {"$schema": "x", "a": {"b": 1, "c": [1, 2]}, "keep": True})
    child = write(tmp_path / "child.json", {"extends": "base.json", "a": {"c": [3]}, "new": 1})
    assert load_recipe(child) == {"a": {"b": 1, "c": [3]}, "keep": True, "new": 1}


def test_extends_swapping_a_component_type_drops_the_old_params(tmp_path):
    write(tmp_path / "base.json", {"data": {"train": {"type": "manifest", "path": "a.jsonl"}, "size": 1}})
    child = write(tmp_path / "child.json", {"extends": "base.json", "data": {"train": {"type": "synthetic_shapes"}}})
    same = write(tmp_path / "same.json", {"extends": "base.json", "data": {"train": {"type": "manifest", "path": "b"}}})
    assert load_recipe(child) == {"data": {"train": {"type": "synthetic_shapes"}, "size": 1}}
    assert load_recipe(same) == {"data": {"train": {"type": "manifest", "path": "b"}, "size": 1}}


def test_extends_chain_is_relative_to_each_file(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path / "root.json", {"x": 1, "y": 1})
    write(tmp_path / "sub" / "mid.json", {"extends": "../root.json", "y": 2})
    leaf = write(tmp_path / "sub" / "leaf.json", {"extends": "mid.json", "z": 3})
    assert load_recipe(leaf) == {"x": 1, "y": 2, "z": 3}


def test_extends_cycle_and_missing_parent_are_errors(tmp_path):
    write(tmp_path / "a.json", {"extends": "b.json"})
    write(tmp_path / "b.json", {"extends": "a.json"})
    with pytest.raises(RecipeError, match="cycle: a.json -> b.json -> a.json"):
        load_recipe(tmp_path / "a.json")
    with pytest.raises(RecipeError, match=r"\$\.extends: 'nope.json' does not exist"):
        load_recipe(write(tmp_path / "c.json", {"extends": "nope.json"}))


def test_invalid_json_names_file_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "a": 1,\n  "b": \n}')
    with pytest.raises(RecipeError, match=r"bad.json:4:1: invalid JSON"):
        load_recipe(path)


@pytest.mark.parametrize("override, expected", [
    ("optim.lr=1e-4", {"optim": {"lr": 1e-4, "type": "adamw"}, "l": [{"v": 1}]}),
    ("optim.type=sgd", {"optim": {"lr": 1, "type": "sgd"}, "l": [{"v": 1}]}),  # not JSON: a string
    ("l.0.v=[1,2]", {"optim": {"lr": 1, "type": "adamw"}, "l": [{"v": [1, 2]}]}),
    ("new.key={\"a\": null}", {"optim": {"lr": 1, "type": "adamw"}, "l": [{"v": 1}], "new": {"key": {"a": None}}}),
])
def test_set_overrides_parse_json_and_fall_back_to_strings(override, expected):
    assert apply_override({"optim": {"lr": 1, "type": "adamw"}, "l": [{"v": 1}]}, override) == expected


@pytest.mark.parametrize("override, message", [
    ("nokey", "expected KEY=VALUE"),
    ("l.5=1", "'l.5' is not an index of a list of 1"),
    ("a.b=1", "'a' is 3, not an object or list"),
])
def test_bad_overrides_are_explained(override, message):
    with pytest.raises(RecipeError, match=message):
        apply_override({"a": 3, "l": [1]}, override)


def test_overrides_apply_after_extends(tmp_path):
    write(tmp_path / "base.json", {"train": {"steps": 5}})
    child = write(tmp_path / "child.json", {"extends": "base.json", "train": {"steps": 7}})
    assert load_recipe(child, ["train.steps=9"]) == {"train": {"steps": 9}}


def test_hash_ignores_key_order_and_diff_lists_paths():
    a = {"x": {"b": 1, "a": [1, 2]}, "y": 1}
    b = {"y": 1, "x": {"a": [1, 2], "b": 1}}
    assert recipe_hash(a) == recipe_hash(b)
    changed = deep_merge(a, {"x": {"b": 2}, "z": True})
    assert diff(a, changed) == ["~ $.x.b: 1 -> 2", "+ $.z: true"]
