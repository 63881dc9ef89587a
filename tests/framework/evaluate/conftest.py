"""One tiny training run shared by every evaluation test, and its untrained baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.evaluate import EvalModel
from framework.train import Trainer
from tests.helpers import tiny_recipe

TRAIN_OVERRIDES = ("train.log_every=10", "train.checkpoint_every=0")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, registry) -> Path:
    """The tiny recipe trained for its ~150 steps (about a minute or two on CPU)."""
    run_dir = tmp_path_factory.mktemp("tiny_run")
    Trainer(tiny_recipe(*TRAIN_OVERRIDES), run_dir, registry, progress=False).run()
    return run_dir


@pytest.fixture(scope="session")
def trained_model(trained_run, registry) -> EvalModel:
    return EvalModel.from_run(trained_run, registry)


@pytest.fixture(scope="session")
def untrained_model(trained_model, registry) -> EvalModel:
    """The same recipe, initialised as the run was but never trained."""
    return EvalModel.from_recipe(trained_model.recipe, registry, tokenizer=trained_model.tokenizer)
