"""Options that need an optional extra are reported at their key, naming the extra."""

from __future__ import annotations

import sys
import types

import pytest

from framework.environment import environment_issues
from framework.validation import ValidationIssue


def test_tensorboard_off_needs_nothing():
    assert environment_issues({"train": {"tensorboard": False}}) == []
    assert environment_issues({"train": {}}) == []
    assert environment_issues({}) == []


def test_missing_tensorboard_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    [issue] = environment_issues({"train": {"tensorboard": True}})
    assert isinstance(issue, ValidationIssue) and issue.path == "$.train.tensorboard"
    assert "pip install -e .[tensorboard]" in issue.message
    assert issue.format("r.json").startswith("r.json::$.train.tensorboard: train.tensorboard is enabled")


@pytest.mark.parametrize("installed", [True, False])
def test_installed_tensorboard_is_fine(monkeypatch, installed):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard",
                        types.ModuleType("torch.utils.tensorboard") if installed else None)
    assert bool(environment_issues({"train": {"tensorboard": True}})) is not installed
