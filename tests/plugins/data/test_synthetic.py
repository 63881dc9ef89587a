"""synthetic_shapes: determinism, split disjointness, boxes and captions that match the pixels."""

import numpy as np
import pytest

from framework.registry import BuildContext, default_registry
from framework_plugins.data.synthetic import COLOURS, SyntheticShapes


def make(**kw):
    params = dict(samples=64, image_size=64, seed=0, max_shapes=2, split="train") | kw
    return SyntheticShapes(**params)


def test_same_seed_same_samples_and_other_seed_differs():
    a, b, c = make(), make(), make(seed=1)
    for i in range(8):
        assert np.array_equal(np.asarray(a[i]["image"]), np.asarray(b[i]["image"]))
        assert a[i]["captions"] == b[i]["captions"] and a[i]["boxes"] == b[i]["boxes"]
    assert any(a[i]["captions"] != c[i]["captions"] for i in range(8))


def test_train_and_eval_splits_differ():
    train, held_out = make(), make(split="eval")
    same = sum(np.array_equal(np.asarray(train[i]["image"]), np.asarray(held_out[i]["image"])) for i in range(32))
    assert same < 4  # identical images only by coincidence of a simple scene


def test_boxes_hold_the_named_colour_and_match_the_caption_position():
    ds = make(samples=200)
    for i in range(200):
        sample = ds[i]
        pixels = np.asarray(sample["image"]).astype(int)  # [H,W,3]
        words = sample["captions"][0]
        for (x0, y0, x1, y1) in sample["boxes"]:
            assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
            centre = pixels[(y0 + y1) // 2, (x0 + x1) // 2]  # every shape covers its box centre
            colour = min(COLOURS, key=lambda c: np.abs(np.array(COLOURS[c]) - centre).sum())
            assert colour in words
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            phrase = next(p for p in words.split(" and ") if colour in p and (
                ("left" not in p or cx < 32) and ("right" not in p or cx > 32)
                and ("top" not in p or cy < 32) and ("bottom" not in p or cy > 32)))
            assert phrase


def test_pixels_outside_boxes_are_background():
    ds = make(samples=20)
    for i in range(20):
        sample = ds[i]
        pixels = np.asarray(sample["image"])
        inside = np.zeros(pixels.shape[:2], dtype=bool)
        for (x0, y0, x1, y1) in sample["boxes"]:
            inside[y0:y1 + 1, x0:x1 + 1] = True
        outside = pixels[~inside]
        assert (outside == outside[0]).all()


def test_labels_name_the_first_shape_and_iter_captions_matches_samples():
    ds = make(samples=30, max_shapes=1)
    for i in range(30):
        sample = ds[i]
        assert ds.label_names[sample["label"]] in sample["captions"][0]
    assert list(ds.iter_captions()) == [c for i in range(30) for c in ds[i]["captions"]]


def test_registered_and_reads_image_size_from_context():
    registry = default_registry()
    ds = registry.build("dataset", {"type": "synthetic_shapes", "samples": 5},
                        BuildContext(registry, {"image_size": 32, "split": "eval"}))
    assert len(ds) == 5 and ds[0]["image"].size == (32, 32) and ds.split == "eval"
    with pytest.raises(IndexError):
        ds[5]
