"""One validation phase: whatever `framework run` refuses, `validate` refuses first, with a
JSON path and the recipe's file name, and a refused run writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.build import build_run, build_shapes
from framework.cli import main
from framework.recipe import load_recipe
from framework.registry import RegistryError, default_registry
from framework.validation import RecipeValidationError, validate_recipe
from tests.helpers import RECIPES

TINY_ITM = [
    {"type": "itc", "view": "full", "embed_dim": 64, "pooling": "mean"},
    {"type": "itm", "view": "full"},
]

REFUSED = {
    "itm_before_itc": (["objectives=" + json.dumps(TINY_ITM[::-1])], r"\$\.objectives\[0\]"),
    "image_from_a_view_without_image_mask": (
        ['views.masked_text.image_from="full"'], r"\$\.views\.masked_text\.image_from"),
    "distill_alpha_without_teacher": (["objectives.0.distill_alpha=0.4"], r"\$\.objectives\[0\]"),
    "micro_batch_not_dividing_global_batch": (["train.micro_batch=7"], r"\$\.train\.global_batch"),
    "infinite_lr": (["optim.lr=Infinity"], r"\$\.optim\.lr"),
    "nan_lr": (["optim.lr=NaN"], r"\$\.optim\.lr"),
    "float_micro_batch": (["train.micro_batch=32.0"], r"\$\.train\.micro_batch"),
    "seed_beyond_64_bits": (["train.seed=18446744073709551616"], r"\$\.train\.seed"),
    "width_not_divisible_by_heads": (["model.image_encoder.width=66"], r"\$\.model\.image_encoder"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_validate_refuses_with_the_path_and_the_file(case):
    overrides, path = REFUSED[case]
    source = str(RECIPES / "tiny.json")
    with pytest.raises(RecipeValidationError, match=path) as info:
        validate_recipe(load_recipe(RECIPES / "tiny.json", overrides), default_registry(), source=source)
    assert all(line.strip().startswith(f"{source}::$") for line in str(info.value).splitlines()[1:])


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_refused_run_writes_nothing(case, tmp_path, capsys):
    overrides, path = REFUSED[case]
    output = tmp_path / "run"
    argv = ["run", "tiny", "--output", str(output), "--quiet"] + [a for o in overrides for a in ("--set", o)]
    assert main(argv) == 2
    assert not output.exists()
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


@pytest.mark.parametrize("case", ["itm_before_itc", "infinite_lr"])
def test_info_refuses_cleanly(case, capsys):
    overrides, _ = REFUSED[case]
    assert main(["info", "tiny"] + [a for o in overrides for a in ("--set", o)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_batch_arithmetic_counts_the_processes_of_the_launch(monkeypatch):
    recipe = load_recipe(RECIPES / "tiny.json", ["train.micro_batch=16"])  # 32 = 16 x 2 processes x 1
    validate_recipe(recipe, default_registry(), world_size=2)
    with pytest.raises(RecipeValidationError, match=r"\$\.train\.global_batch.*3 process"):
        validate_recipe(recipe, default_registry(), world_size=3)
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(RecipeValidationError, match="3 process"):
        validate_recipe(recipe, default_registry())


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.json")), ids=lambda p: p.name)
def test_every_committed_recipe_builds_on_the_meta_device(path: Path):
    """No data read, no weights loaded: paper recipes build on any machine."""
    registry = default_registry()
    recipe = validate_recipe(load_recipe(path), registry, source=path.name, build=False)
    built = build_shapes(recipe, registry)
    params = list(built.model.parameters())
    assert params and all(p.is_meta for p in params)


# --- validate accepts if and only if the model builds -------------------------------------------------

MUTATIONS = st.fixed_dictionaries({
    "image_width": st.sampled_from([48, 64, 66]),
    "heads": st.sampled_from([3, 4]),
    "objectives": st.permutations(["itc", "itm", "mim"]),
    "image_from": st.sampled_from([None, "masked_image", "full"]),
    "distill_alpha": st.sampled_from([0.0, 0.4]),
    "teacher": st.booleans(),
})


def mutated_recipe(m: dict) -> dict:
    """The tiny recipe with a drawn image width/heads, objective order, shared mask and teacher."""
    objectives = {"itc": {"type": "itc", "view": "full", "embed_dim": 64, "pooling": "mean",
                          "distill_alpha": m["distill_alpha"]},
                  "itm": {"type": "itm", "view": "full"},
                  "mim": {"type": "mim", "view": "masked_image", "decoder": "pixels", "target": {"type": "pixels"}}}
    overrides = [f"model.image_encoder.width={m['image_width']}", f"model.image_encoder.heads={m['heads']}",
                 "objectives=" + json.dumps([objectives[name] for name in m["objectives"]]),
                 "train.steps=1", "data.train.samples=64"]
    if m["image_from"] is not None:
        overrides.append(f'views.masked_text.image_from="{m["image_from"]}"')
    if m["teacher"]:
        overrides.append('model.teacher={"type": "ema", "modules": ["image_encoder", "text_encoder", '
                         '"objectives.itc"]}')
    return load_recipe(RECIPES / "tiny.json", overrides)


@settings(max_examples=12)
@given(MUTATIONS)
def test_validate_accepts_exactly_the_recipes_that_build(m):
    registry = default_registry()
    recipe = mutated_recipe(m)
    try:
        validated = validate_recipe(recipe, registry)
    except RecipeValidationError:
        validated = None
    try:  # the real build, on the CPU with data and weights, independent of validation's meta build
        filled = validate_recipe(recipe, registry, build=False)
        build_run(filled, registry)
        builds = True
    except (RecipeValidationError, RegistryError, ValueError, TypeError, RuntimeError):
        builds = False
    assert (validated is not None) == builds, m


def test_validate_notes_the_files_a_recipe_names_that_are_missing(tmp_path, capsys):
    """A recipe stays valid without its data (it builds, counts and pictures), but `validate`
    names each missing file so a run does not stop on it later."""
    manifest = tmp_path / "absent.jsonl"
    source = json.dumps({"type": "manifest", "path": str(manifest)})
    assert main(["validate", "tiny", "--set", f"data.train={source}"]) == 0
    err = capsys.readouterr().err
    assert f"tiny::$.data.train.path: file '{manifest}' does not exist on this machine" in err
    manifest.write_text("")
    assert main(["validate", "tiny", "--set", f"data.train={source}"]) == 0
    assert "does not exist" not in capsys.readouterr().err
