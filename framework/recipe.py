"""Recipe loading: ``extends`` chains, deep merge, ``--set`` overrides, hashing, diffs.

A recipe is plain JSON data and is never executed. ``extends`` names another recipe file
relative to the extending one; objects merge key by key (a component of another ``type``
replaces the old one) and lists are replaced whole.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

SCHEMA_KEY = "$schema"
EXTENDS_KEY = "extends"


class RecipeError(Exception):
    """A recipe file or override could not be read or applied."""


def _same_component(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two objects may merge: not two components of different types."""
    return b.get("type", a.get("type")) == a.get("type")


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into ``base``: objects recursively, everything else replaced.

    An object naming a different component ``type`` replaces the old one whole, so an
    ``extends`` recipe can swap a component without inheriting the old one's params.
    """
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and _same_component(out[key], value):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


MAX_DEPTH = 64
"""Deepest nesting of objects and lists a recipe may have (real ones stay under 10); deeper
input is refused before anything recurses over it."""


def _depth_issue(value: Any) -> str | None:
    """Why ``value`` nests too deeply, or ``None`` (iterative, so it cannot overflow)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > MAX_DEPTH:
                return f"nested more than {MAX_DEPTH} levels deep"
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return None


def parse_json(text: str) -> Any:
    """``json.loads`` whose every failure is a ``ValueError`` with a one-line reason: syntax
    errors (a ``JSONDecodeError`` with its position), nesting deeper than :data:`MAX_DEPTH`,
    integers beyond Python's digit limit."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        raise ValueError(f"a number is too long ({str(exc).split(';')[0]})") from None
    issue = _depth_issue(data)
    if issue:
        raise ValueError(issue)
    return data


def exists(path: Path) -> bool:
    """``path.exists()`` that says no for names the filesystem cannot hold (too long, ...)."""
    try:
        return path.exists()
    except (OSError, ValueError):  # ENAMETOOLONG; ValueError: an embedded NUL byte
        return False


def read_json(path: Path) -> dict[str, Any]:
    """Parse a JSON object from ``path``, naming the file, line and column on errors."""
    try:
        raw = path.read_bytes()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise RecipeError(f"{str(path)[:200]}: cannot read recipe: {reason}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8 text (byte {exc.start} is {raw[exc.start]:#04x}); "
                          "save the recipe as UTF-8 JSON") from None
    try:
        data = parse_json(text)
    except json.JSONDecodeError as exc:
        raise RecipeError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
    except ValueError as exc:
        raise RecipeError(f"{path}: invalid recipe: {exc}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a JSON object, found {type(data).__name__}")
    return data


def load_recipe(path: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Read ``path``, resolve its ``extends`` chain and apply ``KEY=VALUE`` overrides."""
    recipe = _resolve(Path(path), chain=())
    for override in overrides:
        recipe = apply_override(recipe, override)
        issue = _depth_issue(recipe)
        if issue:
            raise RecipeError(f"--set {override[:80]!r}: the recipe would be {issue}")
    return recipe


def _resolve(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(p.name for p in (*chain, path))
        raise RecipeError(f"{path}: 'extends' forms a cycle: {cycle}")
    data = read_json(path)
    data.pop(SCHEMA_KEY, None)
    parent = data.pop(EXTENDS_KEY, None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise RecipeError(f"{path}::$.extends: must be a path to another recipe, found {parent!r}")
    parent_path = path.parent / parent
    if not exists(parent_path):  # a copied recipe keeps extending the built-in it came from
        from framework.resources import builtin_recipes

        parent_path = (builtin_recipes().get(Path(parent).stem, parent_path) if Path(parent).parent == Path(".")
                       else parent_path)
    if not exists(parent_path):
        shown = parent if len(parent) <= 80 else f"{parent[:60]}... ({len(parent)} characters)"
        raise RecipeError(f"{path}::$.extends: '{shown}' does not exist (looked next to {path.name} "
                          "and among the built-in recipes)")
    return deep_merge(_resolve(parent_path, (*chain, path)), data)


def parse_value(text: str) -> Any:
    """Parse an override value as JSON, falling back to the plain string; JSON that
    :func:`parse_json` refuses is a :class:`RecipeError`."""
    try:
        return parse_json(text)
    except json.JSONDecodeError:
        return text
    except ValueError as exc:  # valid JSON we refuse: too deep, too long a number
        raise RecipeError(f"value {text[:40]!r}...: {exc}") from None


def apply_override(recipe: Mapping[str, Any], override: str) -> dict[str, Any]:
    """Apply one ``a.b.0.c=VALUE`` override; list items are addressed by index."""
    key, sep, raw = override.partition("=")
    if not sep or not key:
        raise RecipeError(f"--set {override!r}: expected KEY=VALUE, for example optim.lr=1e-4")
    out = copy.deepcopy(dict(recipe))
    node: Any = out
    parts = key.split(".")
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not (part.isascii() and part.isdigit()) or int(part) >= len(node):  # not '²', which isdigit()
                raise RecipeError(f"--set {override!r}: '{where}' is not an index of a list of {len(node)}")
            index: Any = int(part)
        elif isinstance(node, dict):
            index = part
        else:
            raise RecipeError(f"--set {override!r}: '{'.'.join(parts[:depth])}' is {node!r}, not an object or list")
        if last:
            try:
                node[index] = parse_value(raw)
            except RecipeError as exc:
                raise RecipeError(f"--set {key[:80]!r}: {exc}") from None
        else:
            if isinstance(node, dict) and index not in node:
                node[index] = {}
            node = node[index]
    return out


def canonical_json(recipe: Mapping[str, Any]) -> str:
    return json.dumps(recipe, sort_keys=True, separators=(",", ":"))


def recipe_hash(recipe: Mapping[str, Any]) -> str:
    """A short content hash of a resolved recipe, stable across key order."""
    return hashlib.sha256(canonical_json(recipe).encode()).hexdigest()[:16]


def diff(a: Any, b: Any, path: str = "$") -> list[str]:
    """Lines describing every difference between two resolved recipes, by JSON path."""
    if isinstance(a, dict) and isinstance(b, dict):
        lines: list[str] = []
        for key in sorted(set(a) | set(b)):
            sub = f"{path}.{key}"
            if key not in a:
                lines.append(f"+ {sub}: {json.dumps(b[key])}")
            elif key not in b:
                lines.append(f"- {sub}: {json.dumps(a[key])}")
            else:
                lines.extend(diff(a[key], b[key], sub))
        return lines
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [line for i, (x, y) in enumerate(zip(a, b)) for line in diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"~ {path}: {json.dumps(a)} -> {json.dumps(b)}"]
