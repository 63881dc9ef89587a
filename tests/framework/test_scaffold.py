"""`framework new-plugin`: the scaffolded package builds, installs and passes its own test."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import tomllib

from framework.cli import main
from framework.commands.scaffold import package_name
from framework.hookspecs import API_VERSION, ENTRY_POINT_GROUP


def test_package_names_and_bad_names():
    assert package_name("my-masking") == "my_masking"
    assert package_name("Lab.Targets_v2") == "lab_targets_v2"
    for bad in ("2fast", "my plugin", "-x", ""):
        with pytest.raises(ValueError, match="must start with a letter"):
            package_name(bad)
    for taken in ("framework", "class", "tests"):
        with pytest.raises(ValueError, match="which is taken"):
            package_name(taken)


def test_cli_writes_the_package_and_refuses_to_overwrite(tmp_path, capsys):
    assert main(["new-plugin", "my-masking", "--dir", str(tmp_path)]) == 0
    root = tmp_path / "my-masking"
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["name"] == "my-masking"
    assert project["project"]["entry-points"][ENTRY_POINT_GROUP] == {"my_masking": "my_masking.plugin"}
    assert f"FRAMEWORK_API_VERSION = {API_VERSION}\n" in (root / "my_masking" / "plugin.py").read_text()
    assert (root / "tests" / "test_my_masking.py").is_file()
    assert main(["new-plugin", "my-masking", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.slow
def test_scaffold_passes_its_own_generated_test(tmp_path):
    """Build and install the package as pip would (into a target directory, leaving the
    project's venv untouched), then run its generated tests against the installed copy."""
    assert main(["new-plugin", "lab-masking", "--dir", str(tmp_path)]) == 0
    root, site = tmp_path / "lab-masking", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(root)], check=True, capture_output=True)
    assert sorted(p.name for p in site.iterdir() if p.name.endswith(".dist-info"))[0].startswith("lab_masking-0.1.0")
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=root,
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
