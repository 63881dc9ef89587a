"""Labelled file sources: manifest labels (ids or class names) and declared fields, image
folders labelled by subfolder, name lists from files, and labels collated into a batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from framework.data.collate import Collator, collate_fields
from framework.data.names import read_names
from framework.data.samples import BadSampleError
from framework_plugins.data.files import ImageFolder, Manifest


def png(path: Path, colour: tuple[int, int, int]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)
    return path.name


def write_manifest(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_manifest_labels_by_name_map_to_sorted_class_ids(tmp_path):
    png(tmp_path / "a.png", (255, 0, 0))
    manifest = write_manifest(tmp_path / "m.jsonl",
                              [{"image": "a.png", "label": "zebra"}, {"image": "a.png", "label": "ant"}])
    ds = Manifest(path=str(manifest), image_root=None, labelled=True)
    assert ds.label_names == ["ant", "zebra"]
    assert [ds[i]["label"] for i in range(2)] == [1, 0]
    unlabelled = Manifest(path=str(write_manifest(tmp_path / "u.jsonl",
                                                  [{"image": "a.png"}, {"image": "a.png", "label": "ant"}])),
                          image_root=None)
    assert unlabelled.label_names is None and "label" not in unlabelled[0]
    with pytest.raises(BadSampleError, match="is a class name; name the classes"):
        unlabelled[1]


def test_manifest_integer_labels_and_given_classes_from_a_file(tmp_path):
    png(tmp_path / "a.png", (255, 0, 0))
    (tmp_path / "classes.txt").write_text("cat\n\ndog\n")
    manifest = write_manifest(tmp_path / "m.jsonl",
                              [{"image": "a.png", "label": 1}, {"image": "a.png", "label": "cat"}])
    ds = Manifest(path=str(manifest), image_root=None, classes=str(tmp_path / "classes.txt"))
    assert ds.label_names == ["cat", "dog"] and ds[0]["label"] == 1 and ds[1]["label"] == 0


def test_manifest_unknown_or_out_of_range_label_names_the_line(tmp_path):
    png(tmp_path / "a.png", (255, 0, 0))
    manifest = write_manifest(tmp_path / "m.jsonl",
                              [{"image": "a.png", "label": 5}, {"image": "a.png", "label": "owl"}])
    ds = Manifest(path=str(manifest), image_root=None, classes=["cat", "dog"])
    with pytest.raises(BadSampleError, match="line 1.*not below the 2 classes"):
        ds[0]
    with pytest.raises(BadSampleError, match="line 2.*'owl'"):
        ds[1]


def test_labelled_manifest_missing_a_label_names_file_and_line(tmp_path):
    png(tmp_path / "a.png", (255, 0, 0))
    manifest = write_manifest(tmp_path / "m.jsonl", [{"image": "a.png", "label": 0}, {"image": "a.png"}])
    with pytest.raises(ValueError, match=r"m\.jsonl line 2 has no \"label\""):
        Manifest(path=str(manifest), image_root=None, labelled=True)


def test_manifest_passes_declared_fields_only(tmp_path):
    png(tmp_path / "a.png", (255, 0, 0))
    manifest = write_manifest(tmp_path / "m.jsonl", [
        {"image": "a.png", "captions": "q", "answers": ["yes", "no"], "secret": 1}])
    sample = Manifest(path=str(manifest), image_root=None, fields=["answers", "image2"])[0]
    assert sample["fields"] == {"answers": ["yes", "no"]}


def test_image_folder_labels_by_subfolder_in_sorted_order(tmp_path):
    for cls, colour in (("n02", (0, 0, 255)), ("n01", (255, 0, 0))):
        for i in range(2):
            png(tmp_path / cls / f"{i}.png", colour)
    ds = ImageFolder(path=str(tmp_path), labels="subfolders")
    assert ds.label_names == ["n01", "n02"]
    assert [ds[i]["label"] for i in range(len(ds))] == [0, 0, 1, 1]
    (tmp_path / "names.json").write_text(json.dumps({"n01": "red thing", "n02": "blue thing"}))
    named = ImageFolder(path=str(tmp_path), labels="subfolders", class_names=str(tmp_path / "names.json"))
    assert named.label_names == ["red thing", "blue thing"]
    assert "label" not in ImageFolder(path=str(tmp_path))[0]


def test_image_folder_by_subfolder_refuses_loose_images_and_wrong_name_counts(tmp_path):
    png(tmp_path / "cat" / "0.png", (0, 0, 0))
    with pytest.raises(ValueError, match="2 class names for 1 class folders"):
        ImageFolder(path=str(tmp_path), labels="subfolders", class_names=["a", "b"])
    png(tmp_path / "loose.png", (0, 0, 0))
    with pytest.raises(ValueError, match="loose.png lies at its top level"):
        ImageFolder(path=str(tmp_path), labels="subfolders")


def test_read_names_from_json_and_text(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps(["a photo of a {}."]))
    assert read_names(str(tmp_path / "t.json"), "templates") == ["a photo of a {}."]
    assert read_names(["x"], "templates") == ["x"] and read_names(None, "templates") is None
    with pytest.raises(FileNotFoundError, match="templates 'nope.txt' does not exist"):
        read_names("nope.txt", "templates")


def test_collator_adds_labels_and_fields(tokenizer_for_tests):
    samples = [{"image": torch.zeros(3, 4, 4), "captions": ["a"], "label": 2, "index": 0,
                "fields": {"score": 0.5, "answers": ["yes"]}},
               {"image": torch.zeros(3, 4, 4), "captions": ["b"], "label": 0, "index": 1,
                "fields": {"score": 1.0, "answers": ["no", "maybe"]}}]
    batch = Collator(tokenizer_for_tests, 8)(samples)
    assert batch["label"].tolist() == [2, 0] and batch["label"].dtype == torch.long
    assert batch["score"].tolist() == [0.5, 1.0]
    assert batch["answers"] == [["yes"], ["no", "maybe"]]
    assert "label" not in Collator(tokenizer_for_tests, 8)([{**samples[0], "label": None}, samples[1]])


def test_collate_fields_marks_missing_values_none():
    assert collate_fields([{"fields": {"a": "x"}}, {}]) == {"a": ["x", None]}


@pytest.fixture(scope="module")
def tokenizer_for_tests(registry):
    from framework import data as data_lib
    from tests.helpers import tiny_recipe

    recipe = tiny_recipe('data.train={"type": "synthetic_shapes", "samples": 16, "image_size": 32}')
    return data_lib.build_tokenizer(recipe, registry, data_lib.build_dataset(recipe, registry, "train"))
