"""Helpers shared by subcommands: load + validate a recipe, print clean errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

from framework.recipe import RecipeError, load_recipe
from framework.registry import Registry, RegistryError, default_registry
from framework.validation import RecipeValidationError, validate_recipe

USER_ERRORS = (RecipeError, RecipeValidationError, RegistryError)
DEFAULT_RECIPE = Path(__file__).resolve().parent.parent.parent / "recipes" / "tiny.json"


def add_recipe_argument(parser: Any, *, optional: bool = False) -> None:
    """RECIPE positional (the tiny default when ``optional``) and repeatable ``--set``."""
    if optional:
        parser.add_argument("recipe", nargs="?", default=str(DEFAULT_RECIPE), help="recipe JSON (default: recipes/tiny.json)")
    else:
        parser.add_argument("recipe", help="recipe JSON file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe key, e.g. --set optim.lr=1e-4 (VALUE parsed as JSON)")


def load_validated(path: str, overrides: Sequence[str] = ()) -> tuple[dict[str, Any], Registry]:
    """Load, merge and validate a recipe; raises a USER_ERRORS exception on any problem."""
    registry = default_registry()
    recipe = load_recipe(path, overrides)
    return validate_recipe(recipe, registry, source=path), registry


def fail(exc: BaseException) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 2
