"""Evaluator ``classification``: the fine-tuned head's held-out accuracy against chance and
the majority class, and a clear error on an unlabelled source or a recipe without the objective."""

from __future__ import annotations

import pytest

from framework.evaluate import EvalModel, EvalModelError, run_tasks
from tests.helpers import RECIPES, tiny_recipe


@pytest.fixture(scope="module")
def model(registry) -> EvalModel:
    return EvalModel.from_recipe(tiny_recipe(path=RECIPES / "shapes-classify-tiny.json"), registry)


def test_reports_accuracy_with_chance_and_majority(model, tmp_path):
    results = run_tasks(model, [{"type": "classification", "max_samples": 40, "batch_size": 16}], tmp_path,
                        report=False)["classification"]
    assert results["samples"] == 40 and results["chance_top1"] == pytest.approx(100 / 18)
    assert 0.0 <= results["top1"] <= results["top5"] <= 100.0
    assert results["majority_top1"] >= results["chance_top1"]


def test_needs_a_classification_objective(registry, tmp_path):
    plain = EvalModel.from_recipe(tiny_recipe('data.train={"type": "synthetic_shapes", '
                                              '"samples": 16, "image_size": 32}'),
                                  registry)
    with pytest.raises(EvalModelError, match="needs an objective of type .classification."):
        run_tasks(plain, [{"type": "classification", "max_samples": 4}], tmp_path, report=False)
