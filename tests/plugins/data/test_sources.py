"""File-format sources on real-format fixtures: manifest, COCO, Flickr30k, tar shards,
unpaired text and images, mixtures — read through the training pipeline."""

import io
import json
import tarfile
from itertools import islice

import pytest
import torch

from framework.data import (
    BadDataError,
    DataHealth,
    build_dataset,
    build_train_loader,
    iterate_forever,
)
from framework.registry import ComponentBuildError, default_registry
from framework_plugins.data.synthetic import SyntheticShapes

SHAPES = SyntheticShapes(samples=8, image_size=24, seed=0, max_shapes=2, split="train")


@pytest.fixture(scope="module")
def tokenizer():
    from framework_plugins.tokenizers.wordpiece import train_wordpiece

    return train_wordpiece(["a red circle", "caption 0 1 2 3 4 5 6 7 8 9", "words only here"],
                           vocab_size=200, min_frequency=1)


@pytest.fixture
def files(tmp_path):
    """Eight images (JPEG and PNG) with captions, plus a corrupt image."""
    (tmp_path / "img").mkdir()
    names = []
    for i in range(8):
        name = f"img/{i}.{'jpg' if i % 2 else 'png'}"
        SHAPES[i]["image"].save(tmp_path / name)
        names.append(name)
    (tmp_path / "img" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return tmp_path, names


def build(data, tmp_path):
    recipe = {"data": {"train": data, "tokenizer": {"type": "wordpiece_from_data"}, "image_size": 16,
                       "max_text_len": 8}}
    return recipe, build_dataset(recipe, default_registry())


def first_batches(recipe, dataset, tokenizer, n=2, batch=4, health=None, **kw):
    loader, position = build_train_loader(recipe, dataset, tokenizer, rank=kw.pop("rank", 0),
                                          world_size=kw.pop("world_size", 1), micro_batch=batch, seed=0, **kw)
    return list(islice(iterate_forever(loader, position, health), n)), position


def test_manifest_skips_corrupt_and_missing_images_by_name(files, tokenizer):
    root, names = files
    lines = [{"image": n, "captions": [SHAPES[i]["captions"][0]], "boxes": SHAPES[i]["boxes"]}
             for i, n in enumerate(names)]
    lines[2] = {"image": "img/corrupt.jpg", "captions": "broken"}
    lines[5] = {"image": "img/missing.jpg", "captions": "gone"}
    (root / "m.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    recipe, ds = build({"type": "manifest", "path": str(root / "m.jsonl")}, root)
    health = DataHealth(max_bad_fraction=0.5, min_seen=1)
    batches, _ = first_batches(recipe, ds, tokenizer, n=4, health=health)  # 16 draws = two epochs
    assert health.bad == 4 and health.seen == 20
    assert any("corrupt.jpg" in b for b in health.last_bad) and any("missing.jpg" in b for b in health.last_bad)
    indices = torch.cat([b["index"] for b in batches])
    assert not set(indices.tolist()) & {2, 5}
    assert batches[0]["box_mask"].any(1).all()  # boxes came through
    with pytest.raises(BadDataError, match=r"missing\.jpg|corrupt\.jpg"):
        first_batches(recipe, ds, tokenizer, n=4, health=DataHealth(max_bad_fraction=0.05, min_seen=8))


def test_coco_and_flickr_layouts(files, tokenizer):
    root, names = files
    coco = {"images": [{"id": 10 + i, "file_name": n.split("/")[1]} for i, n in enumerate(names)],
            "annotations": [{"image_id": 10 + i, "id": j, "caption": f" caption {j} "}
                            for i in range(7) for j in (2 * i, 2 * i + 1)]}
    (root / "captions_train2017.json").write_text(json.dumps(coco))
    recipe, ds = build({"type": "coco_captions", "annotations": str(root / "captions_train2017.json"),
                        "images": str(root / "img")}, root)
    assert len(ds) == 7  # image 17 has no caption
    assert ds[3]["captions"] == ["caption 6", "caption 7"] and ds[3]["image"].size == (24, 24)
    batches, _ = first_batches(recipe, ds, tokenizer)
    assert batches[0]["image"].shape == (4, 3, 16, 16)
    (root / "results.token").write_text("".join(f"{i}.png#{j}\tcaption {i} {j}\n" for i in (0, 2) for j in range(5)))
    _, flickr = build({"type": "flickr30k", "captions": str(root / "results.token"), "images": str(root / "img")}, root)
    assert len(flickr) == 2 and flickr[1]["captions"][4] == "caption 2 4"


def write_shard(path, items):
    with tarfile.open(path, "w") as tar:
        for key, members in items:
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def jpeg(i):
    buffer = io.BytesIO()
    SHAPES[i]["image"].save(buffer, format="JPEG")
    return buffer.getvalue()


def test_webdataset_shards_split_over_ranks_and_resume(tmp_path, tokenizer):
    for s in range(2):
        items = [(f"s{s}_{i}", {"jpg": jpeg(i), "txt": f"caption {s} {i}".encode()}) for i in range(4)]
        items[1] = (f"s{s}_bad", {"jpg": b"garbage", "txt": b"bad image"})
        write_shard(tmp_path / f"shard-{s}.tar", items)
    recipe, ds = build({"type": "webdataset", "urls": str(tmp_path / "shard-{0..1}.tar")}, tmp_path)
    captions = []
    for rank in range(2):
        health = DataHealth(max_bad_fraction=0.9, min_seen=1)
        batches, _ = first_batches(recipe, ds, tokenizer, n=1, batch=3, health=health, rank=rank, world_size=2)
        captions.append({tokenizer.decode(ids, skip_special_tokens=True) for ids in batches[0]["input_ids"]})
        assert health.bad == 1 and "s" in health.last_bad[0] and "_bad" in health.last_bad[0]
    assert not captions[0] & captions[1]  # each rank reads its own shard
    assert {c.split()[1] for c in captions[0]} != {c.split()[1] for c in captions[1]}
    straight, _ = first_batches(recipe, ds, tokenizer, n=4, batch=2)
    resumed, _ = first_batches(recipe, ds, tokenizer, n=2, batch=2, start_sample=4)
    for a, b in zip(straight[2:], resumed):
        assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["image"], b["image"])


def test_unpaired_sources_and_mixture(files, tokenizer):
    root, _ = files
    (root / "text.txt").write_text("words only here\n\nanother sentence\n")
    (root / "img" / "corrupt.jpg").unlink()
    text = {"type": "text_lines", "path": str(root / "text.txt")}
    images = {"type": "image_folder", "path": str(root / "img")}
    recipe, mix = build({"type": "mixture", "sources": [text, images], "weights": [1, 3], "samples": 400}, root)
    assert len(mix.sources[0]) == 2 and len(mix.sources[1]) == 8
    picks = [mix.locate(i)[0] for i in range(400)]
    assert 0.65 < picks.count(1) / 400 < 0.85  # weight 3 of 4
    assert list(mix.iter_captions()) == ["words only here", "another sentence"]
    batches, _ = first_batches(recipe, mix, tokenizer, n=3, batch=8)
    has_image = torch.cat([b["has_image"] for b in batches])
    has_text = torch.cat([b["has_text"] for b in batches])
    assert (has_image ^ has_text).all() and has_image.any() and has_text.any()
    images_only = torch.cat([b["image"][~b["has_image"]] for b in batches])
    assert (images_only == 0).all()


def test_missing_paths_are_clear_errors(tmp_path):
    with pytest.raises(ComponentBuildError, match=r"\$\.data\.train: .*manifest"):
        build({"type": "manifest", "path": str(tmp_path / "none.jsonl")}, tmp_path)
    with pytest.raises(ComponentBuildError, match="no shard"):
        build({"type": "webdataset", "urls": [str(tmp_path / "x-{0..3}.tar")]}, tmp_path)


@pytest.mark.parametrize("source", ["manifest", "coco_captions", "webdataset"])
def test_tiny_recipe_trains_from_each_file_source(files, tmp_path, source):
    """The whole loop (tokenizer trained on the source's captions, DeepSpeed steps,
    checkpoint) runs on real-format files, bad samples counted in the metrics."""
    import json as json_lib

    from framework.metrics import read_metrics
    from framework.train import Trainer
    from tests.helpers import tiny_recipe

    root, names = files
    entries = [{"image": n, "captions": SHAPES[i]["captions"]} for i, n in enumerate(names)]
    entries[3] = {"image": "img/corrupt.jpg", "captions": "broken"}
    (root / "m.jsonl").write_text("\n".join(json_lib.dumps(x) for x in entries))
    (root / "coco.json").write_text(json_lib.dumps({
        "images": [{"id": i, "file_name": n.split("/")[1]} for i, n in enumerate(names)],
        "annotations": [{"image_id": i, "id": i, "caption": SHAPES[i]["captions"][0]} for i in range(8)]}))
    for s in range(2):
        write_shard(root / f"shard-{s}.tar", [(f"s{s}_{i}", {"jpg": jpeg(i), "txt": SHAPES[i]["captions"][0].encode()})
                                              for i in range(4)])
    config = {"manifest": {"type": "manifest", "path": str(root / "m.jsonl")},
              "coco_captions": {"type": "coco_captions", "annotations": str(root / "coco.json"),
                                "images": str(root / "img")},
              "webdataset": {"type": "webdataset", "urls": str(root / "shard-{0..1}.tar")}}[source]
    recipe = tiny_recipe(f"data.train={json_lib.dumps(config)}", "data.max_bad_fraction=0.5", "train.steps=3",
                         "train.micro_batch=4", "train.global_batch=4", "train.log_every=1")
    Trainer(recipe, tmp_path / "run", default_registry(), progress=False).run()
    records = read_metrics(tmp_path / "run")
    assert [r["step"] for r in records] == [1, 2, 3] and all(torch.isfinite(torch.tensor(r["loss"])) for r in records)
    assert (records[-1]["bad_samples"] > 0) == (source == "manifest")
