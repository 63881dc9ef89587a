"""Plugin discovery through entry points, and the registry's errors."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from framework import hookimpl
from framework.hookspecs import API_VERSION
from framework.registry import ComponentSpec, Registry, RegistryError

SCHEMA = {"type": "object", "additionalProperties": False, "properties": {}}


def make_distribution(root: Path, name: str, module_source: str, version: str = "1.0") -> None:
    """Write an installed-looking distribution (module + dist-info with an entry point)."""
    (root / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[framework.plugins]\n{name} = {name}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("fake_")]:
        del sys.modules[name]


PLUGIN = '''
from framework import ComponentSpec, hookimpl

class Every:
    def __init__(self, *, stride):
        self.stride = stride

@hookimpl
def framework_components():
    yield ComponentSpec("image_masking", "every", Every,
                        {"type": "object", "additionalProperties": False,
                         "properties": {"stride": {"type": "integer", "default": 2, "description": "d"}}},
                        "Mask every n-th patch.")
'''


def test_entry_point_distribution_is_discovered_and_builds(site):
    make_distribution(site, "fake_every", PLUGIN)
    registry = Registry().load_entry_points()
    spec = registry.get("image_masking", "every")
    assert spec.provider == "fake_every==1.0"
    assert registry.build("image_masking", {"type": "every"}).stride == 2  # default from the schema
    assert "random_patches" in registry.names("image_masking")  # built-ins come the same way


def test_duplicate_name_lists_both_providers(site):
    make_distribution(site, "fake_a", PLUGIN)
    make_distribution(site, "fake_b", PLUGIN)
    with pytest.raises(RegistryError, match=r"registered twice: by fake_a==1.0 and by fake_b==1.0"):
        Registry().load_entry_points()


def test_import_failure_names_the_distribution(site):
    make_distribution(site, "fake_broken", "import not_a_module_anywhere\n")
    with pytest.raises(RegistryError, match=r"plugin 'fake_broken'.*fake_broken==1.0 failed to import"):
        Registry().load_entry_points()


def test_invalid_schema_is_refused():
    registry = Registry()
    bad = ComponentSpec("target", "bad", object, {"type": "object", "properties": {"x": {"type": "nonsense"}}}, "d", "pkg==1")
    with pytest.raises(RegistryError, match=r"target 'bad' from pkg==1: its params schema is not valid"):
        registry.add(bad)


def test_unknown_kind_and_name_suggest_matches():
    registry = Registry()
    with pytest.raises(RegistryError, match=r"unknown kind \(did you mean 'objective'\?\)"):
        registry.add(ComponentSpec("objectiv", "x", object, SCHEMA, "d", "pkg==1"))
    registry.add(ComponentSpec("objective", "contrastive", object, SCHEMA, "d", "pkg==1"))
    with pytest.raises(RegistryError, match=r"did you mean 'contrastive'"):
        registry.get("objective", "contrastiv")


def test_misspelt_hook_is_caught():
    class Plugin:
        @hookimpl
        def framework_componentz(self):
            return []

    with pytest.raises(Exception, match="framework_componentz"):
        Registry().register_plugin(Plugin(), name="typo", distribution="typo==1")


def test_incompatible_api_version_is_refused():
    class Plugin:
        FRAMEWORK_API_VERSION = API_VERSION + 1

    with pytest.raises(RegistryError, match=r"plugin 'old' from old==2 was written for plugin API version"):
        Registry().register_plugin(Plugin(), name="old", distribution="old==2")
