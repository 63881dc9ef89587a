"""Files shipped inside the package: the built-in recipes and the JSON schemas.

Both are package data (``framework.recipes``, ``framework.schemas``; see setup.py), read
through importlib.resources, so a wheel install finds them exactly as a source checkout does.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

DEFAULT_RECIPE = "tiny"


def _package_dir(package: str) -> Path:
    """The folder of a data package (installed packages are plain folders, never zipped)."""
    return Path(str(resources.files(package)))


def schema_path(name: str) -> Path:
    """Path of a shipped schema file, e.g. ``recipe.schema.json``."""
    return _package_dir("framework.schemas") / name


def recipes_dir() -> Path:
    return _package_dir("framework.recipes")


def builtin_recipes() -> dict[str, Path]:
    """Every shipped recipe by name (file stem), sorted."""
    return {path.stem: path for path in sorted(recipes_dir().glob("*.json"))}


@lru_cache(maxsize=None)
def recipe_description(path: Path) -> str:
    """The first sentence of a recipe's ``description`` (empty when it has none)."""
    try:
        text = json.loads(path.read_text()).get("description", "")
    except (OSError, ValueError):
        return ""
    return text.split(". ")[0].rstrip(".") if isinstance(text, str) else ""


def resolve_recipe(name_or_path: str) -> Path:
    """A recipe argument as a file: an existing path wins, else a built-in recipe's name
    (``maskvlm-tiny`` or ``maskvlm-tiny.json``). Unknown names return the path as given,
    so the reader reports it as missing."""
    path = Path(name_or_path)
    try:
        if path.exists():
            return path
    except (OSError, ValueError):  # a name too long for the filesystem: let the reader say so
        return path
    builtin = builtin_recipes().get(path.name.removesuffix(".json")) if path.parent == Path(".") else None
    return builtin if builtin is not None else path
