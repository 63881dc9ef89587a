"""Curves and mask pictures from the CLI, and periodic evaluation during training."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from framework import hookimpl
from framework.cli import main
from framework.evaluate import run_periodic_eval
from framework.metrics import MetricsWriter, read_metrics
from framework.pictures.masks import MIN_SIDE, PAD
from framework.registry import Registry


def read_png(path):
    with Image.open(path) as picture:
        picture.load()
        return picture.size, picture.format


def test_plot_writes_one_panel_per_changing_metric_after_the_loss_overlay(tmp_path):
    records = [{"step": s, "loss": 5.0 / s, "itc": 3.0 - s / 100, "lr": 1e-3, "samples_seen": 32 * s}
               for s in (1, 10, 20)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "curves.png"
    assert main(["plot", str(tmp_path), "--out", str(out), "--width", "200", "--height", "100", "--columns", "2"]) == 0
    assert read_png(out) == ((2 * 200, 2 * 100), "PNG")  # losses overlaid, loss, itc; constant lr left out
    assert main(["plot", str(tmp_path), "--keys", "loss,nope"]) == 2


@pytest.mark.slow
def test_plot_of_the_trained_run(trained_run):
    assert main(["plot", str(trained_run)]) == 0
    size, kind = read_png(trained_run / "curves.png")
    assert kind == "PNG" and size[0] == 3 * 320 and size[1] % 180 == 0


def test_masks_command_draws_every_view(tmp_path):
    out = tmp_path / "masks.png"
    assert main(["masks", "recipes/tiny.json", "--out", str(out), "--samples", "2",
                 "--set", 'data.train={"type": "synthetic_shapes", "samples": 16, "image_size": 32}']) == 0
    (width, height), kind = read_png(out)
    views = 3  # full, masked_image, masked_text
    assert kind == "PNG" and width == (1 + views) * (MIN_SIDE + PAD) + PAD and height > 2 * MIN_SIDE


class Recorder:
    def __init__(self):
        self.calls = []

    @hookimpl
    def framework_on_eval_results(self, task, results, run_dir):
        self.calls.append((task, results, run_dir))


@pytest.mark.slow
def test_periodic_eval_logs_metrics_and_calls_the_hook(trained_model, tmp_path):
    registry = Registry().load_entry_points()
    recorder = Recorder()
    registry.register_plugin(recorder, name="recorder", distribution="tests")
    recipe = {**trained_model.recipe, "eval": {"every": 5, "tasks": [{"type": "retrieval", "max_samples": 16}]}}
    metrics = MetricsWriter(tmp_path, enabled=True)
    trainer = SimpleNamespace(recipe=recipe, registry=registry, engine=SimpleNamespace(module=trained_model.model),
                              tokenizer=trained_model.tokenizer, device=torch.device("cpu"), run_dir=tmp_path,
                              step=7, metrics=metrics)
    assert run_periodic_eval(trainer) is None  # 7 is not a multiple of 5
    trainer.step = 10
    trained_model.model.train()
    results = run_periodic_eval(trainer)
    metrics.close()
    assert trained_model.model.training  # train mode restored
    record = read_metrics(tmp_path)[-1]
    assert record["step"] == 10 and record["eval/retrieval/i2t_r1"] == results["retrieval"]["i2t_r1"]
    assert [c[0] for c in recorder.calls] == ["retrieval"] and recorder.calls[0][2] == str(tmp_path)
    trained_model.model.eval()
