"""The combined recipe schema: the core schema with every component slot expanded into
the params schemas of all registered components of its kind, for editor completion."""

from __future__ import annotations

import copy
from typing import Any

from framework.registry import COMPONENT_KEYWORD, KINDS, Registry
from framework.validation import core_schema


def _expand(node: Any, kinds_used: set[str]) -> Any:
    if isinstance(node, dict):
        if COMPONENT_KEYWORD in node:
            kinds_used.add(node[COMPONENT_KEYWORD])
            out = {"$ref": f"#/$defs/{node[COMPONENT_KEYWORD]}"}
            if "description" in node:
                out["description"] = node["description"]
            return out
        return {k: _expand(v, kinds_used) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, kinds_used) for v in node]
    return node


def _kind_def(registry: Registry, kind: str, kinds_used: set[str]) -> dict[str, Any]:
    specs = registry.specs(kind)
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


def combined_schema(registry: Registry) -> dict[str, Any]:
    """The core schema with ``$defs`` for every component kind reachable from it."""
    kinds_used: set[str] = set()
    schema = _expand(copy.deepcopy(core_schema()), kinds_used)
    defs: dict[str, Any] = {}
    while kinds_used - set(defs):
        for kind in sorted(kinds_used - set(defs)):
            defs[kind] = _kind_def(registry, kind, kinds_used)
    schema["$id"] = "https://framework.invalid/schemas/framework.schema.json"
    schema["$defs"] = dict(sorted(defs.items()))
    return schema
