"""Evaluating the tiny recipe after training against the same recipe untrained.

Every bar is relative (the untrained model, chance computed from the data), so no score
an untrained model could reach by luck passes the test.
"""

from __future__ import annotations

import json

import pytest
import torch

from framework.checkpoint import latest_checkpoint
from framework.cli import main
from framework.evaluate import run_tasks
from framework.model_file import read_model_file

pytestmark = pytest.mark.slow  # trains the tiny recipe for 150 steps first

RETRIEVAL = {"type": "retrieval", "max_samples": 256, "batch_size": 128}
ONE_SHAPE = {"type": "synthetic_shapes", "samples": 256, "max_shapes": 1}  # the label names the only shape
ZERO_SHOT = {"type": "zero_shot", "max_samples": 256, "batch_size": 128, "dataset": ONE_SHAPE}


def test_run_weights_are_the_checkpoint_weights(trained_run, trained_model):
    saved = read_model_file(latest_checkpoint(trained_run / "checkpoints")).state
    state = trained_model.model.state_dict()
    assert trained_model.step == trained_model.recipe["train"]["steps"]
    for name, value in saved.items():
        assert torch.equal(state[name], value), name


def test_retrieval_after_training_far_above_untrained_and_chance(trained_model, untrained_model, tmp_path):
    trained = run_tasks(trained_model, [RETRIEVAL], tmp_path, report=False)["retrieval"]
    untrained = run_tasks(untrained_model, [RETRIEVAL], tmp_path, report=False)["retrieval"]
    images, captions = trained["images"], trained["captions"]
    chance = {"i2t_r1": 100.0 * captions / images / captions, "t2i_r1": 100.0 / images}  # random ranking
    for key in ("i2t_r1", "t2i_r1"):
        assert trained[key] > 2 * untrained[key], (key, trained, untrained)
        assert trained[key] > 2 * chance[key], (key, trained, chance)
    assert trained["r_mean"] > untrained["r_mean"]


def test_zero_shot_after_training_beats_chance_and_untrained(trained_model, untrained_model, tmp_path):
    trained = run_tasks(trained_model, [ZERO_SHOT], tmp_path, report=False)["zero_shot"]
    untrained = run_tasks(untrained_model, [ZERO_SHOT], tmp_path, report=False)["zero_shot"]
    assert trained["top1"] > trained["chance_top1"], trained
    assert trained["top1"] > untrained["top1"], (trained, untrained)
    assert trained["top5"] >= trained["top1"]


def test_eval_command_writes_results_json_and_table(trained_run, tmp_path, capsys):
    out = tmp_path / "eval"
    task = json.dumps({**RETRIEVAL, "max_samples": 64})
    assert main(["eval", str(trained_run), "--task", task, "--task", "reconstruction", "--out", str(out)]) == 0
    written = json.loads((out / "results.json").read_text())
    step = str(json.loads((trained_run / "recipe.json").read_text())["train"]["steps"])
    assert set(written["results"]) == {"retrieval", "reconstruction"}
    assert written["results"]["retrieval"][step]["images"] == 64  # keyed by task, then step
    table = (out / "results.md").read_text()
    assert f"| retrieval | {step} | i2t_r1 |" in table and f"| reconstruction | {step} | mse_masked |" in table
    assert (out / "reconstruction" / "reconstruction.png").is_file()
    assert "i2t_r1" in capsys.readouterr().out


def test_eval_command_explains_a_missing_task_and_a_bad_target(trained_run, tmp_path, capsys):
    assert main(["eval", str(trained_run), "--out", str(tmp_path)]) == 2
    assert "no evaluation task" in capsys.readouterr().err
    assert main(["eval", str(tmp_path), "--task", "retrieval", "--out", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["eval", str(trained_run), "--task", "retrievl", "--out", str(tmp_path)]) == 2
    assert "did you mean 'retrieval'" in capsys.readouterr().err
