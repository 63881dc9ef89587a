"""``karpathy``: the dataset_coco.json / dataset_flickr30k.json layout, its splits for
training (train + restval, one sample per caption) and evaluation (test, per image), and
retrieval with ITM re-ranking evaluated on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from framework.evaluate import EvalModel, run_tasks
from framework_plugins.data.karpathy import KarpathySplit
from tests.helpers import tiny_recipe

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black"]
SPLITS = ["train", "train", "train", "restval", "val", "test", "test", "test"]


def write_split_file(root: Path, flickr: bool = False) -> Path:
    """Eight one-colour PNGs with three captions each, in Karpathy's layout."""
    images = []
    for i, (colour, split) in enumerate(zip(COLOURS, SPLITS)):
        folder = root / "images" / ("" if flickr else "val2014")
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), colour).save(folder / f"{i}.png")
        entry = {"filename": f"{i}.png", "split": split, "imgid": i,
                 "sentences": [{"raw": f"a {colour} square ", "tokens": []}, {"raw": f"all {colour}"}, {"raw": " "}]}
        if not flickr:
            entry["filepath"] = "val2014"
        images.append(entry)
    path = root / ("dataset_flickr30k.json" if flickr else "dataset_coco.json")
    path.write_text(json.dumps({"images": images, "dataset": "flickr30k" if flickr else "coco"}))
    return path


@pytest.mark.parametrize("flickr", [False, True])
def test_training_reads_train_and_restval_per_caption_and_evaluation_test_per_image(tmp_path, flickr):
    path = write_split_file(tmp_path, flickr)
    common = {"annotations": str(path), "images": str(tmp_path / "images"), "splits": None, "split": None}
    train = KarpathySplit(**common, per_caption=True, context={"split": "train"})
    assert len(train) == 4 * 2  # 4 images x 2 non-empty captions
    assert train[0]["captions"] == ["a red square"] and train[1]["captions"] == ["all red"]
    assert train[7]["captions"] == ["all yellow"] and train[7]["image"].getpixel((0, 0)) == (255, 255, 0)
    test = KarpathySplit(**common, per_caption=True, context={"split": "eval"})
    assert len(test) == 3 and test[0]["captions"] == ["a orange square", "all orange"]
    per_image = KarpathySplit(**common, per_caption=False, context={"split": "train"})
    assert len(per_image) == 4 and len(list(per_image.iter_captions())) == 8
    val = KarpathySplit(**{**common, "splits": ["val"]}, per_caption=True, context={"split": "eval"})
    assert [s["captions"] for s in (val[0],)] == [["a purple square", "all purple"]]


def test_broken_split_files_are_named(tmp_path):
    (tmp_path / "images").mkdir()
    bad = tmp_path / "dataset_coco.json"
    bad.write_text(json.dumps({"images": [{"split": "test", "sentences": []}]}))
    common = {"annotations": str(bad), "images": str(tmp_path / "images"), "splits": ["test"], "per_caption": True,
              "split": "eval"}
    with pytest.raises(ValueError, match=r"images\[0\] needs 'filename'"):
        KarpathySplit(**common)
    bad.write_text(json.dumps({"annotations": []}))
    with pytest.raises(ValueError, match="is not a Karpathy split file"):
        KarpathySplit(**common)
    with pytest.raises(FileNotFoundError, match="Karpathy split file"):
        KarpathySplit(**{**common, "annotations": str(tmp_path / "none.json")})


def test_retrieval_with_itm_reranking_on_the_karpathy_test_split(registry, tmp_path):
    path = write_split_file(tmp_path)
    source = json.dumps({"type": "karpathy", "annotations": str(path), "images": str(tmp_path / "images")})
    objectives = json.dumps([{"type": "itc", "view": "full", "embed_dim": 32}, {"type": "itm", "view": "full"}])
    recipe = tiny_recipe(f"data.train={source}", f"objectives={objectives}", "data.tokenizer.vocab_size=120")
    model = EvalModel.from_recipe(recipe, registry)
    results = run_tasks(model, [{"type": "retrieval", "rerank_k": 2, "max_samples": None}], tmp_path / "eval",
                        report=False)["retrieval"]
    assert results["images"] == 3 and results["captions"] == 6
    assert all(0.0 <= results[f"{d}_r{k}"] <= 100.0 for d in ("i2t", "t2i") for k in (1, 5, 10))
    assert results["i2t_r10"] == 100.0 and results["t2i_r10"] == 100.0  # 3 images: everything is in the top 10
