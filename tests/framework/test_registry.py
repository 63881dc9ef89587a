"""Plugin discovery through entry points, the registry's errors, and broken plugins that
are reported without taking down the components a recipe does not use."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from framework import hookimpl
from framework.cli import build_parser
from framework.commands import components as list_command
from framework.hookspecs import API_VERSION
from framework.recipe import load_recipe
from framework.registry import ComponentSpec, PluginRefused, Registry, RegistryError
from framework.validation import RecipeValidationError, validate_recipe
from tests.helpers import RECIPES

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

BAD_SCHEMA_PLUGIN = PLUGIN + '''
    yield ComponentSpec("target", "wobbly", Every, {"type": "object", "properties": {"x": {"type": "nonsense"}}}, "d")
'''

FUTURE_PLUGIN = PLUGIN + f'''
FRAMEWORK_API_VERSION = {API_VERSION + 1}
'''

STEP_PLUGIN = '''
from framework import hookimpl
from framework.cli import build_parser

SEEN = []

@hookimpl
def framework_on_step_end(step, metrics, run_dir):
    SEEN.append(step)

@hookimpl
def framework_on_stepend(step):
    pass
'''


def tiny_with_masking(name: str) -> dict:
    recipe = load_recipe(RECIPES / "tiny.json")
    recipe["views"]["masked_image"]["image"] = {"type": name}
    return recipe


def test_entry_point_distribution_is_discovered_and_builds(site):
    make_distribution(site, "fake_every", PLUGIN)
    registry = Registry().load_entry_points()
    spec = registry.get("image_masking", "every")
    assert spec.provider == "fake_every==1.0"
    assert registry.build("image_masking", {"type": "every"}).stride == 2  # default from the schema
    assert "random_patches" in registry.names("image_masking")  # built-ins come the same way
    assert registry.failures == []


def test_duplicate_name_fails_only_where_used_and_lists_both_providers(site):
    make_distribution(site, "fake_a", PLUGIN)
    make_distribution(site, "fake_b", PLUGIN)
    registry = Registry().load_entry_points()
    [failure] = registry.failures
    assert (failure.distribution, failure.components) == ("fake_b==1.0", (("image_masking", "every"),))
    assert "every" not in [s.name for s in registry.specs("image_masking")]
    with pytest.raises(RegistryError, match=r"registered twice: by fake_a==1.0 and by fake_b==1.0"):
        registry.get("image_masking", "every")
    validate_recipe(load_recipe(RECIPES / "tiny.json"), registry)  # unrelated recipes are unaffected
    with pytest.raises(RecipeValidationError, match=r"\$\.views\.masked_image\.image\.type: image_masking 'every' "
                                                   r"cannot be used: .*registered twice"):
        validate_recipe(tiny_with_masking("every"), registry)


def test_import_failure_is_recorded_and_named_when_a_name_is_missing(site):
    make_distribution(site, "fake_broken", "import not_a_module_anywhere\n")
    make_distribution(site, "fake_every", PLUGIN)
    registry = Registry().load_entry_points()
    [failure] = registry.failures
    assert failure.plugin == "fake_broken" and failure.components == ()
    assert "fake_broken==1.0 failed to import fake_broken: ModuleNotFoundError" in failure.reason
    assert registry.build("image_masking", {"type": "every"}).stride == 2  # the healthy plugin still loads
    with pytest.raises(RegistryError, match=r"no target named 'sift'.*failed to load and may provide it: "
                                            r"plugin 'fake_broken' from fake_broken==1.0"):
        registry.get("target", "sift")


def test_invalid_schema_refuses_that_component_only(site):
    make_distribution(site, "fake_wobbly", BAD_SCHEMA_PLUGIN)
    registry = Registry().load_entry_points()
    [failure] = registry.failures
    assert failure.components == (("target", "wobbly"),)
    assert registry.get("image_masking", "every").provider == "fake_wobbly==1.0"  # its sibling is kept
    with pytest.raises(RegistryError, match=r"target 'wobbly' cannot be used: target 'wobbly' from "
                                            r"fake_wobbly==1.0: its params schema is not valid"):
        registry.get("target", "wobbly")


def test_invalid_schema_is_refused():
    registry = Registry()
    bad = ComponentSpec("target", "bad", object, {"type": "object", "properties": {"x": {"type": "nonsense"}}}, "d",
                        "pkg==1")
    with pytest.raises(RegistryError, match=r"target 'bad' from pkg==1: its params schema is not valid"):
        registry.add(bad)


def test_unknown_kind_and_name_suggest_matches():
    registry = Registry()
    with pytest.raises(RegistryError, match=r"unknown kind \(did you mean 'objective'\?\)"):
        registry.add(ComponentSpec("objectiv", "x", object, SCHEMA, "d", "pkg==1"))
    registry.add(ComponentSpec("objective", "contrastive", object, SCHEMA, "d", "pkg==1"))
    with pytest.raises(RegistryError, match=r"did you mean 'contrastive'"):
        registry.get("objective", "contrastiv")


def test_misspelt_hook_refuses_the_plugin_and_its_other_hooks():
    class Plugin:
        @hookimpl
        def framework_componentz(self):
            return []

        @hookimpl
        def framework_on_checkpoint(self, step, path):
            raise AssertionError("a refused plugin's hooks must not run")

    registry = Registry()
    with pytest.raises(PluginRefused, match="framework_componentz"):
        registry.register_plugin(Plugin(), name="typo", distribution="typo==1")
    registry.hook().framework_on_checkpoint(step=1, path="x")
    assert registry.distributions == {}


def test_misspelt_hook_from_an_entry_point_is_recorded(site):
    make_distribution(site, "fake_steps", STEP_PLUGIN)
    registry = Registry().load_entry_points()
    [failure] = registry.failures
    assert failure.distribution == "fake_steps==1.0" and "framework_on_stepend" in failure.reason
    registry.hook().framework_on_step_end(step=3, metrics={}, run_dir="x")
    assert sys.modules["fake_steps"].SEEN == []


def test_incompatible_api_version_is_refused():
    class Plugin:
        FRAMEWORK_API_VERSION = API_VERSION + 1

    with pytest.raises(RegistryError, match=r"plugin 'old' from old==2 was written for plugin API version"):
        Registry().register_plugin(Plugin(), name="old", distribution="old==2")


def test_incompatible_api_version_names_the_distribution_where_used(site):
    make_distribution(site, "fake_future", FUTURE_PLUGIN, version="3.1")
    registry = Registry().load_entry_points()
    [failure] = registry.failures
    assert failure.components == (("image_masking", "every"),)  # what it would have provided
    assert "every" not in [s.name for s in registry.specs("image_masking")]
    validate_recipe(load_recipe(RECIPES / "tiny.json"), registry)
    with pytest.raises(RecipeValidationError, match=rf"fake_future==3.1 was written for plugin API version "
                                                   rf"{API_VERSION + 1}.*install a release of fake_future "
                                                   rf"built for API {API_VERSION}"):
        validate_recipe(tiny_with_masking("every"), registry)


def test_framework_list_shows_broken_plugins(site, monkeypatch, capsys):
    make_distribution(site, "fake_broken", "raise RuntimeError('half-installed')\n", version="0.2")
    make_distribution(site, "fake_a", PLUGIN)
    make_distribution(site, "fake_b", PLUGIN)
    registry = Registry().load_entry_points()
    monkeypatch.setattr(list_command, "default_registry", lambda: registry)
    assert list_command.list_components(build_parser().parse_args(["list", "image_masking"])) == 0
    out, err = capsys.readouterr()
    assert "random_patches" in out and "broken plugins (2;" in err
    assert "fake_broken==0.2 (plugin 'fake_broken', unknown components): " in err and "half-installed" in err
    assert "fake_b==1.0 (plugin 'fake_b', image_masking 'every'): " in err


def test_framework_list_names_the_module_that_defines_each_component(capsys):
    assert list_command.list_components(build_parser().parse_args(["list", "image_masking"])) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[0][:4] == ["KIND", "NAME", "PROVIDER", "MODULE"]
    modules = {row[1]: row[3] for row in rows[1:]}
    assert modules["random_patches"] == "framework_plugins.masking.random_patches"
    assert modules["block"] == "framework_plugins.masking.block"
