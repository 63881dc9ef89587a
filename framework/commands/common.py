"""Helpers shared by subcommands: load + validate a recipe, print clean errors."""

from __future__ import annotations

import errno
import sys
from typing import Any, Sequence

from framework.recipe import RecipeError, load_recipe
from framework.registry import Registry, RegistryError, default_registry
from framework.resources import DEFAULT_RECIPE as DEFAULT_RECIPE_NAME
from framework.resources import builtin_recipes, resolve_recipe
from framework.validation import RecipeValidationError, validate_recipe

USER_ERRORS = (RecipeError, RecipeValidationError, RegistryError)
DEFAULT_RECIPE = str(builtin_recipes()[DEFAULT_RECIPE_NAME])
RECIPE_HELP = "recipe JSON file, or the name of a built-in recipe (see `framework recipes`)"


def add_recipe_argument(parser: Any, *, optional: bool = False) -> None:
    """RECIPE positional (None when ``optional`` and omitted) and repeatable ``--set``."""
    if optional:
        parser.add_argument("recipe", nargs="?", default=None, help=RECIPE_HELP + f" (default: {DEFAULT_RECIPE_NAME})")
    else:
        parser.add_argument("recipe", help=RECIPE_HELP)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe key, e.g. --set optim.lr=1e-4 (VALUE parsed as JSON)")


def load_validated(path: str, overrides: Sequence[str] = ()) -> tuple[dict[str, Any], Registry]:
    """Load, merge and validate a recipe; raises a USER_ERRORS exception on any problem."""
    registry = default_registry()
    recipe = load_recipe(resolve_recipe(path), overrides)
    return validate_recipe(recipe, registry, source=path), registry


def error_line(exc: BaseException) -> str:
    """The message of ``exc``: an OSError as ``PATH: reason`` (``[Errno 28] No space left on
    device: 'x'`` reads worse), anything else as its text (its type when it has none)."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename is not None else ""
        return f"{where}{exc.strerror}" + (" (free some space, then resume the run with --resume)"
                                           if exc.errno == errno.ENOSPC else "")
    return str(exc).strip() or type(exc).__name__


def fail(exc: BaseException) -> int:
    print(f"error: {error_line(exc)}", file=sys.stderr)
    return 2
