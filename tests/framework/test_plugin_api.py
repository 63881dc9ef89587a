"""Plugins, the built-ins and the example package, import from the one public plugin module."""

from __future__ import annotations

import ast

import pytest

import framework.api as api
from tests.helpers import REPO

PLUGIN_SOURCES = sorted([*(REPO / "plugins").rglob("*.py"),
                         *(REPO / "examples" / "framework-hog" / "framework_hog").rglob("*.py")])


@pytest.mark.parametrize("path", PLUGIN_SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_plugins_import_the_framework_only_through_its_api(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "framework":
            assert node.module == "framework.api", f"{path.name}:{node.lineno} imports {node.module}"
        if isinstance(node, ast.Import):
            assert not any(a.name.split(".")[0] == "framework" for a in node.names), f"{path.name}:{node.lineno}"


def test_the_api_exports_what_it_lists():
    assert sorted(api.__all__) == sorted(set(api.__all__))
    assert all(hasattr(api, name) for name in api.__all__)
