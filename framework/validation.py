"""Recipe validation: the core schema plus every component's own params schema.

All errors are collected before anything is built, each as
``recipe.json::$.objectives[2].target.momentum: message`` with a did-you-mean for
unknown component types and keys.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

import jsonschema

from framework.objective import OBJECTIVE_REF_SECTION, objective_name
from framework.registry import (
    COMPONENT_KEYWORD,
    ComponentBuildError,
    Registry,
    RegistryError,
    default_type,
    did_you_mean,
    fill_defaults,
)
from framework.resources import schema_path

CORE_SCHEMA_PATH = schema_path("recipe.schema.json")
REF_KEYWORD = "x-framework-ref"
"""Marks a string (or list of strings) that must name an entry of a recipe section,
e.g. ``{"x-framework-ref": "views"}``."""

_SLOT = {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}}


@dataclass(frozen=True, order=True)
class ValidationIssue:
    """One problem in a recipe, at a JSON path."""

    path: str
    message: str

    def format(self, source: str = "recipe") -> str:
        return f"{source}::{self.path}: {self.message}"


class RecipeValidationError(Exception):
    """A recipe has one or more problems; ``issues`` lists all of them."""

    def __init__(self, issues: list[ValidationIssue], source: str = "recipe") -> None:
        self.issues = sorted(issues)
        self.source = source
        lines = "\n".join(f"  {issue.format(source)}" for issue in self.issues)
        super().__init__(f"{source}: {len(self.issues)} problem(s):\n{lines}")


@lru_cache(maxsize=1)
def core_schema() -> dict[str, Any]:
    return json.loads(CORE_SCHEMA_PATH.read_text())


def _slots_as_objects(schema: Any) -> Any:
    """The schema with each nested-component node replaced by a generic ``{type: ...}`` slot,
    so the plain validator checks the shape around components but not their params."""
    if isinstance(schema, dict):
        if COMPONENT_KEYWORD in schema:
            slot = {**_SLOT, "description": schema.get("description", "")}
            return {**slot, "required": []} if default_type(schema) else slot
        return {k: _slots_as_objects(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_slots_as_objects(v) for v in schema]
    return schema


def _format_error(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        extras = [k for k in error.instance if k not in allowed]
        parts = [f"unknown key '{k}'{did_you_mean(k, allowed)}" for k in extras]
        return "; ".join(parts) + f"; allowed keys: {', '.join(allowed) or 'none'}"
    if error.validator == "type" and isinstance(error.instance, float):
        if not math.isfinite(error.instance):
            return f"{error.instance} is not allowed: numbers must be finite"
        if error.instance.is_integer() and "integer" in str(error.validator_value):
            return f"{error.instance!r} is not an integer; write {int(error.instance)}"
    if error.validator in ("oneOf", "anyOf") and error.context:
        best = jsonschema.exceptions.best_match(error.context)
        return f"{best.message} (best of {len(error.schema[error.validator])} alternatives, all failed)"
    return error.message


def _is_integer(_checker: Any, value: Any) -> bool:
    """JSON Schema counts 32.0 as an integer; a recipe may not (``range(32.0)`` fails later)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(_checker: Any, value: Any) -> bool:
    """Finite numbers only: Python's JSON reader accepts ``Infinity`` and ``NaN``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


StrictValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many({"integer": _is_integer,
                                                                              "number": _is_number}))
"""Draft 2020-12 with integers that are ints and numbers that are finite."""


def _schema_issues(schema: Mapping[str, Any], instance: Any, prefix: str) -> list[ValidationIssue]:
    validator = StrictValidator(_slots_as_objects(schema))
    issues = []
    for error in validator.iter_errors(instance):
        path = prefix + error.json_path[1:]
        issues.append(ValidationIssue(path, _format_error(error)))
    return issues


def _walk(schema: Any, instance: Any, path: str) -> Iterator[tuple[dict, Any, str]]:
    """Yield (schema node, instance, path) for every node that carries a framework keyword."""
    if not isinstance(schema, dict):
        return
    if COMPONENT_KEYWORD in schema or REF_KEYWORD in schema:
        yield schema, instance, path
        return
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        for key, value in instance.items():
            if key in props:
                yield from _walk(props[key], value, f"{path}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                yield from _walk(schema["additionalProperties"], value, f"{path}.{key}")
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for i, value in enumerate(instance):
            yield from _walk(schema["items"], value, f"{path}[{i}]")


def _earlier_objectives(objectives: Any, path: str) -> list[str]:
    """Names of the objectives listed before the one at ``path`` (``$.objectives[i]...``)."""
    match = re.match(r"\$\.objectives\[(\d+)\]", path)
    entries = objectives[:int(match.group(1))] if match and isinstance(objectives, list) else []
    return [objective_name(c) for c in entries if isinstance(c, dict) and isinstance(c.get("type"), str)]


def _ref_issues(node: dict, value: Any, path: str, recipe: Mapping[str, Any]) -> list[ValidationIssue]:
    section_path = node[REF_KEYWORD]
    section: Any = recipe
    for part in section_path.split("."):
        section = section.get(part, {}) if isinstance(section, dict) else {}
    names = list(section) if isinstance(section, dict) else []  # a malformed section is reported by the shape check
    if section_path == OBJECTIVE_REF_SECTION:  # a list, referenced by name: only earlier entries have run
        names, section_path = _earlier_objectives(section, path), "the objectives listed before this one"
    values = value if isinstance(value, list) else [value]
    return [
        ValidationIssue(path, f"'{v}' is not defined in {section_path}{did_you_mean(v, names)}; "
                              f"defined: {', '.join(names) or 'none'}")
        for v in values
        if isinstance(v, str) and v not in names
    ]


def _component_issues(
    registry: Registry, schema: Mapping[str, Any], instance: Any, path: str, recipe: Mapping[str, Any]
) -> list[ValidationIssue]:
    """Check every framework-keyword node under ``schema`` against the registry."""
    issues: list[ValidationIssue] = []
    for node, value, where in _walk(schema, instance, path):
        if REF_KEYWORD in node:
            issues += _ref_issues(node, value, where, recipe)
            continue
        if not (isinstance(value, dict) and isinstance(value.get("type"), str)):
            continue  # the shape check has reported it
        kind, name = node[COMPONENT_KEYWORD], value["type"]
        if name not in registry.names(kind):
            issues.append(ValidationIssue(f"{where}.type", registry.missing_message(kind, name)))
            continue
        try:
            params_schema = registry.get(kind, name).schema
        except RegistryError as exc:  # provided by a plugin that failed to load
            issues.append(ValidationIssue(f"{where}.type", str(exc)))
            continue
        params = {k: v for k, v in value.items() if k != "type"}
        issues += _schema_issues(params_schema, params, where)
        issues += _component_issues(registry, params_schema, fill_defaults(params_schema, params), where, recipe)
    return issues


def _nonfinite_issues(value: Any, path: str) -> list[ValidationIssue]:
    """Infinity and NaN anywhere, free-form sections included (the schema sees typed fields)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [ValidationIssue(path, f"{value} is not allowed: numbers must be finite")]
    if isinstance(value, dict):
        return [i for k, v in value.items() for i in _nonfinite_issues(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [i for n, v in enumerate(value) for i in _nonfinite_issues(v, f"{path}[{n}]")]
    return []


def launch_world_size() -> int:
    """Processes of this launch: ``WORLD_SIZE`` as torchrun and deepspeed set it, else 1."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def _batch_issues(train: Mapping[str, Any], world_size: int) -> list[ValidationIssue]:
    """global_batch = micro_batch x processes x accumulation steps, with a whole number of steps."""
    micro, total = train["micro_batch"], train["global_batch"]
    if total % (micro * world_size) == 0:
        return []
    fits = [m for m in range(1, micro + 1) if total % (m * world_size) == 0]
    hint = f"; e.g. micro_batch {fits[-1]}" if fits else ""
    return [ValidationIssue("$.train.global_batch",
                            f"{total} is not a multiple of micro_batch {micro} x {world_size} process(es): each "
                            f"optimiser step must be a whole number of micro-batches{hint}")]


def _build_issues(recipe: Mapping[str, Any], registry: Registry) -> list[ValidationIssue]:
    """What only building the model can tell: build it on the meta device (no data, no weights)."""
    from framework.build import build_shapes

    try:
        build_shapes(recipe, registry)
    except RecipeValidationError as exc:
        return exc.issues
    except ComponentBuildError as exc:
        return [ValidationIssue(exc.path, exc.message)]
    except (RegistryError, ValueError, TypeError, KeyError) as exc:
        return [ValidationIssue("$.model", f"the model cannot be built: {type(exc).__name__}: {exc}")]
    return []


def validate_recipe(recipe: Mapping[str, Any], registry: Registry, source: str = "recipe", *,
                    build: bool = True, world_size: Optional[int] = None) -> dict[str, Any]:
    """Return the recipe with core defaults filled, or raise with every problem found.

    This is the one validation phase: the schema, every component's params, references
    between entries, the batch arithmetic for ``world_size`` processes (default: this
    launch's), the environment, and (``build``) a meta-device build of the model, so
    that whatever `framework run` would refuse is refused here, before anything is written."""
    schema = core_schema()
    issues = _schema_issues(schema, recipe, "$") + _nonfinite_issues(recipe, "$")
    filled = fill_defaults(schema, recipe) if isinstance(recipe, dict) else recipe
    if isinstance(filled, dict):
        issues += _component_issues(registry, schema, filled, "$", filled)
    if not issues:
        from framework.environment import (
            environment_issues,  # it names ValidationIssue from here
        )

        issues += _batch_issues(filled["train"], world_size or launch_world_size()) + environment_issues(filled)
    if not issues and build:
        issues += _build_issues(filled, registry)
    if issues:
        raise RecipeValidationError(issues, source)
    return filled


@dataclass(frozen=True)
class ComponentEntry:
    """One component a validated recipe names: where, which, and its params with defaults."""

    path: str
    kind: str
    name: str
    params: dict[str, Any]
    schema: Mapping[str, Any]


def component_entries(recipe: Mapping[str, Any], registry: Registry) -> list[ComponentEntry]:
    """Every component of a validated recipe, nested ones included, in recipe order."""
    found: list[ComponentEntry] = []

    def visit(schema: Mapping[str, Any], instance: Any, path: str) -> None:
        for node, value, where in _walk(schema, instance, path):
            if COMPONENT_KEYWORD in node and isinstance(value, dict):
                kind, name = node[COMPONENT_KEYWORD], value["type"]
                params_schema = registry.get(kind, name).schema
                params = fill_defaults(params_schema, value)
                found.append(ComponentEntry(where, kind, name, params, params_schema))
                visit(params_schema, params, where)

    visit(core_schema(), recipe, "$")
    return found


def components_used(recipe: Mapping[str, Any], registry: Registry) -> list[tuple[str, str]]:
    """(kind, name) of every component a validated recipe names, nested ones included."""
    return [(entry.kind, entry.name) for entry in component_entries(recipe, registry)]


PATH_KEYWORD = "x-framework-path"
"""Marks a string parameter naming a local file or directory (``"file"``, ``"dir"`` or
``"any"``) that a run reads: `framework validate` notes the ones missing on this machine."""


def missing_paths(recipe: Mapping[str, Any], registry: Registry) -> list[ValidationIssue]:
    """Files and directories the recipe names that do not exist here. Not errors: a recipe
    is valid on a machine without its data or weights (shapes, FLOPs, masks), but a run
    there would stop at the first of these."""
    issues = []
    for entry in component_entries(recipe, registry):
        for key, prop in entry.schema.get("properties", {}).items():
            value = entry.params.get(key)
            if not (isinstance(prop, dict) and PATH_KEYWORD in prop and isinstance(value, str)):
                continue
            kind = prop[PATH_KEYWORD]
            path = Path(value)
            ok = path.is_file() if kind == "file" else path.is_dir() if kind == "dir" else path.exists()
            if not ok:
                issues.append(ValidationIssue(f"{entry.path}.{key}", f"{kind if kind != 'any' else 'path'} "
                                                                     f"'{value}' does not exist on this machine"))
    return issues
