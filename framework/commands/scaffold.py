"""`framework new-plugin NAME [--dir DIR]`: scaffold a plugin package to start from.

The package has a ``pyproject.toml`` exposing one plugin module through the
``framework.plugins`` entry-point group, one component (an ``image_masking`` strategy,
the simplest call protocol) with its strict params schema, and a test that installs
nothing but checks discovery, the schema and the masking contract. ``docs/plugins.md``
walks through a larger example (``examples/framework-hog``).
"""

from __future__ import annotations

import argparse
import keyword
import re
from pathlib import Path
from string import Template

from framework.commands.common import fail
from framework.hookspecs import API_VERSION, ENTRY_POINT_GROUP

NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")
RESERVED = {"framework", "plugins", "tests"}

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$name"
version = "0.1.0"
description = "A plugin for framework (masked vision-language pretraining)"
requires-python = ">=3.10"
dependencies = ["framework"]

# The only way a plugin reaches the framework: each entry names a module with hooks.
[project.entry-points."$group"]
$package = "$package.plugin"

[tool.setuptools.packages.find]
include = ["$package*"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

INIT = '''\
"""$name: a plugin package for framework; its components are listed in ``plugin.py``."""
'''

PLUGIN = '''\
"""The plugin module named in pyproject.toml's entry points: registers the components."""

from __future__ import annotations

from typing import Iterator

from framework.api import ComponentSpec, hookimpl

from $package import masking

FRAMEWORK_API_VERSION = $api_version
"""The plugin API this was written for; another framework version refuses it clearly."""


@hookimpl
def framework_components() -> Iterator[ComponentSpec]:
    yield from masking.COMPONENTS
'''

MASKING = '''\
"""An image masking strategy: hide a random ``ratio`` of the patches of each sample.

Replace the body of ``__call__`` with your strategy; keep the ``MaskingOutput`` contract
(``True`` = masked; ``ids_keep`` / ``ids_restore`` exact when every sample hides the same
number of patches, else ``None``) and draw randomness only from ``generator``.
"""

from __future__ import annotations

from typing import Optional

import torch
from framework.api import ComponentSpec, MaskingOutput


class RandomRatio:
    """Mask ``int(L * ratio)`` uniformly random patches of each sample."""

    def __init__(self, *, ratio: float) -> None:
        self.ratio = ratio

    def __call__(self, *, batch_size: int, grid: tuple[int, int], patch_size: int, generator: torch.Generator,
                 device: torch.device | str, boxes: Optional[torch.Tensor] = None,
                 box_mask: Optional[torch.Tensor] = None) -> MaskingOutput:
        length = grid[0] * grid[1]
        keep = length - int(length * self.ratio)
        noise = torch.rand(batch_size, length, generator=generator, device=generator.device).to(device)  # [B,L]
        ids_shuffle = torch.argsort(noise, dim=1)  # [B,L] kept positions first
        ids_restore = torch.argsort(ids_shuffle, dim=1)  # [B,L] inverse permutation
        shuffled = torch.arange(length, device=device).expand(batch_size, length) >= keep  # [B,L] masked, shuffled
        mask = torch.gather(shuffled, 1, ids_restore)  # [B,L] in position order
        return MaskingOutput(mask=mask, ids_keep=ids_shuffle[:, :keep], ids_restore=ids_restore)


SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "ratio": {"type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": 0.5,
                  "description": "Fraction of the patches to mask, in [0, 1)."},
    },
}

COMPONENTS = [ComponentSpec("image_masking", "$package", RandomRatio, SCHEMA,
                            "Mask a random fraction of the patches (scaffolded by framework new-plugin).")]
'''

TEST = '''\
"""The plugin is discovered through its entry point, validates its params and keeps the
masking contract. Run with ``pytest`` after ``pip install -e .``."""

from __future__ import annotations

import jsonschema
import pytest
import torch
from framework.registry import default_registry


def test_discovered_through_the_entry_point():
    registry = default_registry()
    spec = registry.get("image_masking", "$package")
    assert spec.provider.endswith("==0.1.0"), spec.provider
    assert [f for f in registry.failures if f.plugin == "$package"] == []


def test_schema_is_strict_and_fills_defaults():
    schema = default_registry().get("image_masking", "$package").schema
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"ratio": 1.5}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"no_such_param": 1}, schema)
    assert default_registry().build("image_masking", {"type": "$package"}).ratio == 0.5


def test_masks_keep_the_contract():
    masker = default_registry().build("image_masking", {"type": "$package", "ratio": 0.75})
    out = masker(batch_size=3, grid=(4, 4), patch_size=8, generator=torch.Generator().manual_seed(0), device="cpu")
    assert out.mask.shape == (3, 16) and torch.equal(out.mask.sum(1), torch.full((3,), 12))
    assert not torch.gather(out.mask, 1, out.ids_keep).any()
    assert torch.equal(torch.gather(torch.argsort(out.ids_restore, 1), 1, out.ids_restore),
                       torch.arange(16).expand(3, 16))
'''

README = '''\
# $name

A plugin package for `framework`. Install it next to the framework and its component
appears in `framework list` and can be named in a recipe:

    pip install -e .
    pytest
    framework list image_masking

    "views": {"masked": {"image": {"type": "$package", "ratio": 0.6}}}

See the framework's `docs/plugins.md` for the hooks and conventions.
'''


def package_name(name: str) -> str:
    """The importable package of distribution ``name``: ``my-masking`` -> ``my_masking``."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"plugin name {name!r} must start with a letter and hold only letters, digits, '.', '_' "
                         "and '-', for example my-masking")
    package = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if keyword.iskeyword(package) or package in RESERVED:
        raise ValueError(f"plugin name {name!r} gives the package name {package!r}, which is taken; choose another")
    return package


def scaffold(name: str, parent: Path) -> Path:
    """Write the package ``parent/name``; returns its directory. Refuses to overwrite."""
    package = package_name(name)
    root = parent / name
    if root.exists():
        raise FileExistsError(f"{root} already exists; remove it or pass --dir to scaffold elsewhere")
    values = {"name": name, "package": package, "group": ENTRY_POINT_GROUP, "api_version": API_VERSION}
    files = {
        "pyproject.toml": PYPROJECT, "README.md": README, f"{package}/__init__.py": INIT,
        f"{package}/plugin.py": PLUGIN, f"{package}/masking.py": MASKING, f"tests/test_{package}.py": TEST,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template).substitute(values))
    return root


def new_plugin(args: argparse.Namespace) -> int:
    try:
        root = scaffold(args.name, Path(args.dir))
    except (ValueError, FileExistsError) as exc:
        return fail(exc)
    print(f"wrote {root}; next: pip install -e {root} && (cd {root} && pytest), then edit "
          f"{root / package_name(args.name) / 'masking.py'}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("new-plugin", help="scaffold a plugin package (pyproject, entry point, component, test)")
    p.add_argument("name", help="distribution name, e.g. my-masking (package: my_masking)")
    p.add_argument("--dir", default=".", help="parent directory of the new package (default: .)")
    p.set_defaults(func=new_plugin)
