"""What produced a run: the resolved recipe's hash and the versions of everything used."""

from __future__ import annotations

import platform
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Mapping

from framework.recipe import recipe_hash
from framework.registry import Registry
from framework.validation import components_used

LIBRARIES = ("framework", "torch", "deepspeed", "timm", "transformers", "pluggy", "jsonschema")


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def provenance(recipe: Mapping[str, Any], registry: Registry, world_size: int) -> dict[str, Any]:
    """Recipe hash, library versions and the distribution providing each component used."""
    used = sorted(set(components_used(recipe, registry)))
    return {
        "recipe_hash": recipe_hash(recipe),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "python": platform.python_version(),
        "host": platform.node(),
        "world_size": world_size,
        "libraries": {name: _version(name) for name in LIBRARIES},
        "components": {f"{kind}/{name}": registry.get(kind, name).provider for kind, name in used},
        "plugin_distributions": sorted({registry.get(kind, name).provider for kind, name in used}),
    }
