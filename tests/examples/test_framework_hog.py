"""The example plugin package (examples/framework-hog) as CI sees it: installed, discovered
through its entry points, in the CLI's listing and schema, and trained with."""

from __future__ import annotations

import csv
import json
from importlib.metadata import PackageNotFoundError, distribution

import pytest

from framework.cli import main
from framework.metrics import read_metrics
from framework.recipe import load_recipe
from framework.train import Trainer
from framework.validation import validate_recipe
from tests.helpers import REPO

EXAMPLE = REPO / "examples" / "framework-hog"
RECIPE = EXAMPLE / "recipes" / "hog-tiny.json"


@pytest.fixture(scope="module", autouse=True)
def installed():
    try:
        return distribution("framework-hog")
    except PackageNotFoundError:
        pytest.fail("the example plugin is not installed: run `.venv/bin/pip install -e examples/framework-hog` "
                    "(scripts/test does so when it creates the venv)")


def test_entry_points_are_the_only_way_in(installed):
    assert sorted((ep.group, ep.name, ep.value) for ep in installed.entry_points) == [
        ("framework.plugins", "hog", "framework_hog.components"),
        ("framework.plugins", "hog_csv_log", "framework_hog.csv_log"),
    ]


def test_framework_list_shows_its_components_with_the_distribution(capsys, installed, registry):
    assert registry.failures == []
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    provider = f"framework-hog=={installed.version}"
    for kind, name in (("target", "hog"), ("image_masking", "checkerboard")):
        assert any(line.split()[:3] == [kind, name, provider] for line in out.splitlines()), (kind, name)


def test_framework_schema_includes_them_except_in_the_committed_copy(tmp_path):
    out = tmp_path / "schema.json"
    assert main(["schema", "--out", str(out)]) == 0
    defs = json.loads(out.read_text())["$defs"]
    assert "hog" in defs["target"]["properties"]["type"]["enum"]
    assert "checkerboard" in defs["image_masking"]["properties"]["type"]["enum"]
    hog = next(b["then"] for b in defs["target"]["allOf"] if b["if"]["properties"]["type"]["const"] == "hog")
    assert hog["properties"]["cell_size"]["default"] == 8  # editors complete its params
    assert main(["schema", "--out", str(out), "--only", "framework"]) == 0
    assert "hog" not in json.loads(out.read_text())["$defs"]["target"]["properties"]["type"]["enum"]


def test_its_recipe_validates_and_trains(tmp_path, registry):
    recipe = validate_recipe(load_recipe(RECIPE, ["train.steps=3", "train.log_every=1", "train.global_batch=8",
                                                  "train.micro_batch=8", "data.train.samples=64"]),
                             registry, source=str(RECIPE))
    assert recipe["views"]["checkerboard"]["image"]["type"] == "checkerboard"
    last = Trainer(recipe, tmp_path, registry, progress=False).run()
    assert last["step"] == 3 and last["mim/patches"] == 8 * 8  # half of each 4x4 grid, 8 samples
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]
    provenance = json.loads((tmp_path / "provenance.json").read_text())
    assert provenance["components"]["target/hog"] == provenance["components"]["image_masking/checkerboard"]
    assert provenance["components"]["target/hog"].startswith("framework-hog==")
    with (tmp_path / "hog_metrics.csv").open(newline="") as handle:  # its step-end hook ran
        logged = {(int(row["step"]), row["name"]): float(row["value"]) for row in csv.DictReader(handle)}
    assert logged[3, "mim"] == pytest.approx(last["mim"])
