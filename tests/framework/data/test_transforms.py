"""Sample transforms: boxes follow the image, flips fix captions, bad augment keys are named."""

import pytest
import torch
from PIL import Image

from framework.data.transforms import SampleTransform, parse_augment, swap_left_right


def sample():
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    image.paste((255, 255, 255), (4, 2, 14, 12))  # white square at x 4..13, y 2..11
    return {"image": image, "captions": ["a white square on the left"], "boxes": [[4, 2, 14, 12]]}


def make(augment=None, train=True):
    return SampleTransform(image_size=20, mean=[0.5] * 3, std=[0.5] * 3, augment=augment or {}, train=train)


def test_eval_resizes_boxes_and_normalises():
    out = make(train=False)(sample())
    assert out["image"].shape == (3, 20, 20)
    assert torch.allclose(out["boxes"], torch.tensor([[2.0, 2.0, 7.0, 12.0]]))  # x scaled by 20/40
    assert out["image"].min() == pytest.approx(-1.0) and out["image"].max() == pytest.approx(1.0, abs=0.02)


def test_flip_moves_box_and_swaps_caption_words():
    out = make({"hflip": {"p": 1.0}})(sample())
    assert torch.allclose(out["boxes"], torch.tensor([[13.0, 2.0, 18.0, 12.0]]))
    assert out["captions"] == ["a white square on the right"]
    x0, y0, x1, y1 = out["boxes"][0].long().tolist()
    assert out["image"][:, y0 + 1:y1 - 1, x0 + 1:x1 - 1].min() > 0.9  # the square moved with its box
    kept = make({"hflip": {"p": 1.0, "swap_left_right": False}})(sample())
    assert kept["captions"] == ["a white square on the left"]


def test_random_crop_keeps_boxes_inside_and_randaugment_runs():
    transform = make({"random_resized_crop": {"scale": [0.3, 1.0]}, "randaugment": {"num_ops": 2, "magnitude": 9}})
    torch.manual_seed(0)
    for _ in range(20):
        out = transform(sample())
        assert out["image"].shape == (3, 20, 20)
        boxes = out["boxes"]
        assert ((boxes >= 0) & (boxes <= 20)).all() and (boxes[:, 2:] > boxes[:, :2]).all()


def test_text_only_sample_passes_through():
    out = make()({"captions": ["words only"]})
    assert out["image"] is None and out["boxes"].shape == (0, 4)


def test_unknown_or_bad_augment_keys_are_named():
    with pytest.raises(ValueError, match="hflp"):
        parse_augment({"hflp": {}})
    with pytest.raises(ValueError, match=r"data.augment.hflip.p"):
        parse_augment({"hflip": {"p": 2}})
    assert parse_augment({"hflip": {}})["hflip"] == {"p": 0.5, "swap_left_right": True}


def test_swap_left_right_whole_words_only():
    assert swap_left_right("left of the right leftover") == "right of the left leftover"
