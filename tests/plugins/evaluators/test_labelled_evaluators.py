"""Zero-shot classification and the linear probe on real labelled images: PNG files in an
ImageNet-layout folder (one subfolder per class), class names and templates from files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framework.evaluate import EvalModel, run_tasks
from tests.helpers import tiny_recipe

COLOURS = {"blue": (30, 60, 220), "red": (220, 40, 30)}


def image_folder(root: Path, per_class: int, seed: int) -> Path:
    """``root/<colour>/<i>.png``: noisy squares of each class colour on a grey background."""
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((32, 32, 3), 128, dtype=np.int16)
            x, y = rng.integers(0, 12, size=2)
            pixels[y:y + 20, x:x + 20] = colour
            pixels += rng.integers(-20, 21, size=pixels.shape, dtype=np.int16)
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("labelled")
    return image_folder(base / "train", 12, seed=0), image_folder(base / "test", 6, seed=1)


@pytest.fixture(scope="module")
def model(registry) -> EvalModel:
    return EvalModel.from_recipe(tiny_recipe('data.train={"type": "synthetic_shapes", '
                                             '"samples": 16, "image_size": 32}'),
                                 registry)


def test_linear_probe_on_an_image_folder_beats_the_majority(model, folders, tmp_path):
    train, test = folders
    task = {"type": "linear_probe", "steps": 50, "batch_size": 8,
            "train_dataset": {"type": "image_folder", "path": str(train), "labels": "subfolders"},
            "dataset": {"type": "image_folder", "path": str(test), "labels": "subfolders"}}
    results = run_tasks(model, [task], tmp_path, report=False)["linear_probe"]
    assert results["majority_top1"] == pytest.approx(50.0)
    assert results["top1"] > 80.0  # colour is linearly readable even from an untrained ViT's [CLS]


def test_zero_shot_on_an_image_folder_with_names_and_templates_from_files(model, folders, tmp_path):
    _, test = folders
    (tmp_path / "names.txt").write_text("blue square\nred square\n")
    (tmp_path / "templates.txt").write_text("a {}\na picture of a {}\n")
    task = {"type": "zero_shot", "classes": str(tmp_path / "names.txt"), "templates": str(tmp_path / "templates.txt"),
            "dataset": {"type": "image_folder", "path": str(test), "labels": "subfolders"}}
    results = run_tasks(model, [task], tmp_path, report=False)["zero_shot"]
    assert results["samples"] == 12 and results["chance_top1"] == pytest.approx(50.0)
    assert 0.0 <= results["top1"] <= 100.0 and results["top5"] == pytest.approx(100.0)


def test_zero_shot_takes_class_names_from_the_folders(model, folders, tmp_path):
    _, test = folders
    task = {"type": "zero_shot", "dataset": {"type": "image_folder", "path": str(test), "labels": "subfolders"}}
    results = run_tasks(model, [task], tmp_path, report=False)["zero_shot"]
    assert results["samples"] == 12
