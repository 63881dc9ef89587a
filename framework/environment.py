"""What a recipe needs from the environment beyond its components: optional extras.

:func:`environment_issues` is part of validation: an option that needs a package this
environment lacks is reported at its recipe key, naming the extra that installs it, before
a run directory is made (instead of a traceback from inside the run).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from framework.validation import ValidationIssue


@dataclass(frozen=True)
class Extra:
    """An optional dependency: the recipe key that enables it, the module it imports and the
    ``[project.optional-dependencies]`` extra of pyproject.toml that installs it."""

    key: str
    module: str
    extra: str
    package: str

    def enabled(self, recipe: Mapping[str, Any]) -> bool:
        node: Any = recipe
        for part in self.key.split("."):
            if not isinstance(node, Mapping):
                return False
            node = node.get(part)
        return bool(node)

    def issue(self, error: str) -> ValidationIssue:
        return ValidationIssue(
            "$." + self.key,
            f"{self.key} is enabled but {self.package} is not importable ({error}); install the extra with "
            f"`pip install -e .[{self.extra}]` (or `pip install 'framework[{self.extra}]'`), or set {self.key}=false")


EXTRAS = (Extra("train.tensorboard", "torch.utils.tensorboard", "tensorboard", "tensorboard"),)


def import_error(module: str) -> str | None:
    """Why ``module`` cannot be imported, or ``None`` when it can."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return str(exc) or type(exc).__name__
    return None


def environment_issues(recipe: Mapping[str, Any]) -> list[ValidationIssue]:
    """An issue for each enabled option of ``recipe`` whose optional package is missing."""
    issues = []
    for extra in EXTRAS:
        if extra.enabled(recipe):
            error = import_error(extra.module)
            if error is not None:
                issues.append(extra.issue(error))
    return issues
