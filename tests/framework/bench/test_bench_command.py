"""`framework bench` on the tiny recipe for 2 steps writes a complete JSON record."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from framework.bench.synthetic import StandInTokenizer, synthetic_batch
from framework.cli import main
from framework.commands.common import DEFAULT_RECIPE, load_validated


def test_bench_tiny_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", DEFAULT_RECIPE, "--steps", "2", "--warmup", "0", "--batch", "4",
                 "--data", "synthetic", "--vocab-size", "200", "--loading-images", "32", "--output", str(out)]) == 0
    record = json.loads(out.read_text())
    side = record["framework"]
    assert record["device"] == "cpu" and record["options"]["batch"] == 4 and len(record["recipe_hash"]) >= 8
    assert side["samples_per_s"] > 0 and side["train_flops_per_sample"] > side["forward_flops_per_sample"] > 0
    assert side["mfu"] is None and side["peak_tflops"] is None  # no peak for a CPU
    phases = sum(side[f"{p}_ms"] for p in ("data", "forward", "backward", "optimizer"))
    assert phases > 0 and "torch" in record["libraries"] and "machine" in record
    loading = record["loading"]  # the loader's rate at the recipe's shapes beside the step's demand
    assert loading["images_per_s_per_worker"] > 0 and loading["demand_samples_per_s"] == side["samples_per_s"]
    assert loading["workers_needed"] >= 1 and loading["image_size"] == record_image_size(DEFAULT_RECIPE)


def record_image_size(recipe_path: str) -> int:
    return load_validated(recipe_path)[0]["data"]["image_size"]


def test_synthetic_batch_shapes_and_captions() -> None:
    recipe, _ = load_validated(DEFAULT_RECIPE)
    batch = synthetic_batch(recipe, 6, 200, torch.Generator().manual_seed(0))
    size, length = recipe["data"]["image_size"], recipe["data"]["max_text_len"]
    assert batch["image"].shape == (6, 3, size, size) and batch["input_ids"].shape == (6, length)
    assert (batch["input_ids"][:, 0] == StandInTokenizer(200).cls_token_id).all()
    lengths = batch["attention_mask"].sum(1)  # [CLS] .. [SEP]
    assert (batch["input_ids"].gather(1, lengths[:, None] - 1) == 102).all()
    assert (batch["input_ids"][batch["attention_mask"] == 0] == 0).all()
    assert (batch["boxes"][..., 2:] >= batch["boxes"][..., :2]).all() and batch["box_mask"][:, 0].all()


def test_default_bench_path_is_a_fresh_file_outside_the_source_tree(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from framework.bench.results import RESULTS_DIR, default_path, write

    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    first = default_path("recipes/tiny.json", "NVIDIA H200", 8, data="synthetic", now=now, root=tmp_path)
    assert first.name == "bench-tiny-nvidia-h200-b8-synthetic-20260102T030405Z.json"
    write(first, {"a": 1}, exclusive=True)
    second = default_path("recipes/tiny.json", "NVIDIA H200", 8, data="synthetic", now=now, root=tmp_path)
    assert second.name.endswith("-2.json") and not second.exists()  # never replaces an earlier record
    assert RESULTS_DIR.parts[0] == "runs"  # not benchmarks/results/, which holds committed records
