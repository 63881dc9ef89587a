"""`framework data check` on a small manifest with broken entries, and evaluation sets that
leave unreadable samples out instead of repeating their neighbours."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from framework.cli import main
from framework.data import build_dataset
from framework.data.check import check_source, classify, leaf_sources
from framework.evaluate.samples import eval_batches
from framework.recipe import load_recipe
from framework.registry import default_registry
from framework.resources import builtin_recipes
from framework.validation import validate_recipe

LONG = " ".join(["a red square above a blue circle"] * 6)


def tiny_recipe(*overrides):
    return validate_recipe(load_recipe(builtin_recipes()["tiny"], overrides), default_registry())


@pytest.fixture
def manifest(tmp_path):
    """Ten lines: six good samples, then a missing image, a corrupt one, empty captions and
    a line that is not JSON (lines 7-10)."""
    for name, size in (("a.png", (40, 30)), ("b.png", (64, 64)), ("c.png", (32, 48))):
        Image.new("RGB", size, (200, 30, 30)).save(tmp_path / name)
    (tmp_path / "corrupt.png").write_bytes(b"not an image at all")
    good = [{"image": name, "captions": caption if isinstance(caption, list) else [caption]} for name, caption in
            (("a.png", "a red square"), ("b.png", LONG), ("c.png", "a blue circle"), ("a.png", "two shapes"),
             ("b.png", "a green triangle"), ("c.png", ["one", "two words"]))]
    lines = [json.dumps(r) for r in good] + [
        json.dumps({"image": "missing.png", "captions": ["gone"]}),
        json.dumps({"image": "corrupt.png", "captions": ["broken"]}),
        json.dumps({"image": "a.png", "captions": ["  ", ""]}),
        '{"image": "a.png", "captions": ["unterminated"',
    ]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def recipe_args(path, *extra):
    return ["tiny", "--set", f'data.train={{"type": "manifest", "path": "{path}"}}', "--set", "data.max_text_len=16",
            *extra]


def test_check_names_each_problem_by_file_line_and_kind(manifest):
    recipe = tiny_recipe(f'data.train={{"type": "manifest", "path": "{manifest}"}}')
    [(name, source)] = leaf_sources("data.train", build_dataset(recipe, default_registry()),
                                        recipe["data"]["train"])
    report = check_source(name, source, workers=0)
    assert name == "data.train (manifest)" and report.samples == 10 and report.bad == 4
    assert [(p.where, p.kind) for p in report.problems] == [
        (f"{manifest}:7", "missing file"), (f"{manifest}:8", "unreadable image"),
        (f"{manifest}:9", "empty captions"), (f"{manifest}:10", "bad JSON line")]
    assert sorted(set(report.sizes)) == [(32, 48), (40, 30), (64, 64)] and len(report.sizes) == 6
    assert len(report.captions) == 7


def test_workers_read_the_same(manifest):
    recipe = tiny_recipe(f'data.train={{"type": "manifest", "path": "{manifest}"}}')
    source = build_dataset(recipe, default_registry())
    assert check_source("m", source, workers=2).problems == check_source("m", source, workers=0).problems


def test_command_reports_statistics_and_fails_past_the_bad_fraction(manifest, capsys):
    assert main(["data", "check", *recipe_args(manifest, "--workers", "0", "--quiet")]) == 1
    captured = capsys.readouterr()
    out = captured.out
    assert "data.train (manifest): 10 samples, 4 unusable (40.00%)" in out
    assert f"{manifest}:7: missing file: FileNotFoundError" in out
    assert f"{manifest}:10: bad JSON line" in out
    assert "by kind: " in out and "images: 6; width 32..64" in out
    assert "1 (14.3%) longer than data.max_text_len=16 are truncated" in out  # the long caption of line 2
    assert "data.max_bad_fraction=0.01" in captured.err
    assert main(["data", "check", *recipe_args(manifest, "--set", "data.max_bad_fraction=0.5", "--quiet",
                                               "--workers", "0", "--show", "1")]) == 0
    out = capsys.readouterr().out
    assert "... and 3 more" in out and "data check passed" in out


def test_command_explains_a_missing_manifest(tmp_path, capsys):
    assert main(["data", "check", *recipe_args(tmp_path / "nope.jsonl", "--quiet")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: data.train: ") and "nope.jsonl' does not exist" in err


def test_classify_kinds():
    assert classify(FileNotFoundError("x")) == "missing file"
    assert classify(OSError("cannot identify image file")) == "unreadable image"
    assert classify(ValueError("other")) == "unusable sample"


def test_eval_sets_skip_unreadable_samples_instead_of_repeating_neighbours(manifest, capsys):
    recipe = tiny_recipe(f'data.train={{"type": "manifest", "path": "{manifest}"}}')
    dataset = build_dataset(recipe, default_registry())
    batches = list(eval_batches(recipe, dataset, batch_size=4))
    read = [int(i) for b in batches for i in b.index]
    assert read == [0, 1, 2, 3, 4, 5]  # each readable sample once; 6..9 left out, not replaced
    assert sum(b.images.shape[0] for b in batches) == 6
    skipped = [name for b in batches for name in b.skipped]
    assert "missing.png" in skipped[0] and "corrupt.png" in skipped[1]  # 8 and 9 fill a batch that is not yielded
    assert "evaluation skipped 4 of 10 samples" in capsys.readouterr().err


def test_evaluation_task_sources_are_checked_too(manifest, capsys):
    task = json.dumps([{"type": "retrieval", "dataset": {"type": "manifest", "path": str(manifest)}}])
    assert main(["data", "check", "tiny", "--set", f"eval.tasks={task}", "--quiet", "--workers", "0"]) == 1
    out = capsys.readouterr()
    assert "data.train (synthetic_shapes): 2048 samples, 0 unusable" in out.out
    assert "eval.tasks[0].dataset (manifest): 10 samples, 4 unusable" in out.out
    assert "eval.tasks[0].dataset: 4 of 10 samples unusable" in out.err
