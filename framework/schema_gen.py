"""The combined recipe schema: the core schema with every component slot expanded into
the params schemas of the registered components of its kind, for editor completion.

The committed ``schemas/framework.schema.json`` holds only this project's own components
(:data:`PROJECT_DISTRIBUTION`), so installing a plugin package does not make it stale;
``framework schema --out FILE`` writes one with every installed plugin for local use."""

from __future__ import annotations

import copy
from typing import Any, Collection, Optional

from framework.registry import COMPONENT_KEYWORD, KINDS, Registry, default_type
from framework.validation import core_schema

PROJECT_DISTRIBUTION = "framework"
"""The distribution whose components the committed combined schema describes."""


def distribution_name(provider: str) -> str:
    """``"framework-hog"`` from a provider string such as ``"framework-hog==0.1.0"``."""
    return provider.split("==")[0]


def _default_def(kind: str, name: str) -> str:
    """The ``$defs`` entry of the params of ``name``, for entries of ``kind`` that omit their type."""
    return f"{kind}-{name}"


def _expand(node: Any, kinds_used: set[str]) -> Any:
    if isinstance(node, dict):
        if COMPONENT_KEYWORD in node:
            kind = node[COMPONENT_KEYWORD]
            kinds_used.add(kind)
            out: dict[str, Any] = {"$ref": f"#/$defs/{kind}"}
            if default_type(node):  # an entry without "type" is one of the default type
                kinds_used.add(_default_def(kind, default_type(node)))
                out = {"if": {"required": ["type"]}, "then": out,
                       "else": {"$ref": f"#/$defs/{_default_def(kind, default_type(node))}"},
                       "default": node["default"]}
            if "description" in node:
                out["description"] = node["description"]
            return out
        return {k: _expand(v, kinds_used) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, kinds_used) for v in node]
    return node


def _kind_def(registry: Registry, kind: str, kinds_used: set[str],
              distributions: Optional[Collection[str]]) -> dict[str, Any]:
    specs = [spec for spec in registry.specs(kind)
             if distributions is None or distribution_name(spec.provider) in distributions]
    branches = []
    for spec in specs:
        params = _expand(copy.deepcopy(dict(spec.schema)), kinds_used)
        params.setdefault("properties", {})
        params["properties"] = {"type": {"const": spec.name, "description": spec.doc}, **params["properties"]}
        params.setdefault("description", f"{spec.doc} (from {spec.provider})")
        branches.append({"if": {"properties": {"type": {"const": spec.name}}, "required": ["type"]}, "then": params})
    return {
        "type": "object",
        "description": f"A {kind} component: {KINDS[kind]}.",
        "required": ["type"],
        "properties": {"type": {"enum": [s.name for s in specs], "description": f"Registered {kind} name."}},
        "allOf": branches,
    }


def combined_schema(registry: Registry, distributions: Optional[Collection[str]] = None) -> dict[str, Any]:
    """The core schema with ``$defs`` for every component kind reachable from it, listing the
    components of ``distributions`` (names such as ``"framework"``; ``None``: every one)."""
    kinds_used: set[str] = set()
    schema = _expand(copy.deepcopy(core_schema()), kinds_used)
    defs: dict[str, Any] = {}
    while kinds_used - set(defs):
        for kind in sorted(kinds_used - set(defs)):
            if kind in KINDS:
                defs[kind] = _kind_def(registry, kind, kinds_used, distributions)
            else:  # a default type's params: the branch of its kind's definition
                of_kind, name = kind.split("-", 1)
                defs[kind] = _expand(copy.deepcopy(dict(registry.get(of_kind, name).schema)), kinds_used)
    schema["$id"] = "https://framework.invalid/schemas/framework.schema.json"
    schema["$defs"] = dict(sorted(defs.items()))
    return schema
