"""Sample transforms: the augment list runs in order, boxes follow the image, eval only resizes."""

import pytest
import torch
from PIL import Image

from framework.data.samples import sample_rng
from framework.data.transforms import (
    SampleTransform,
    build_augments,
    build_transform,
    legacy_augment,
)
from framework_plugins import augment as augment_plugin
from tests.helpers import registry_of

DATA = {"image_size": 20, "mean": [0.5] * 3, "std": [0.5] * 3}


def sample():
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    image.paste((255, 255, 255), (4, 2, 14, 12))  # white square at x 4..13, y 2..11
    return {"image": image, "captions": ["a white square on the left"], "boxes": [[4, 2, 14, 12]]}


def make(augment=(), train=True):
    return build_transform({**DATA, "augment": list(augment)}, train=train,
                           registry=registry_of(augment_plugin, "augment"))


def test_eval_resizes_boxes_and_normalises():
    out = make([{"type": "hflip", "p": 1.0}], train=False)(sample())  # eval ignores the augment list
    assert out["image"].shape == (3, 20, 20)
    assert torch.allclose(out["boxes"], torch.tensor([[2.0, 2.0, 7.0, 12.0]]))  # x scaled by 20/40
    assert out["image"].min() == pytest.approx(-1.0) and out["image"].max() == pytest.approx(1.0, abs=0.02)
    assert out["captions"] == ["a white square on the left"]


def test_flip_after_the_square_resize_moves_box_and_swaps_caption_words():
    out = make([{"type": "hflip", "p": 1.0}])(sample())
    assert torch.allclose(out["boxes"], torch.tensor([[13.0, 2.0, 18.0, 12.0]]))
    assert out["captions"] == ["a white square on the right"]
    x0, y0, x1, y1 = out["boxes"][0].long().tolist()
    assert out["image"][:, y0 + 1:y1 - 1, x0 + 1:x1 - 1].min() > 0.9  # the square moved with its box
    kept = make([{"type": "hflip", "p": 1.0, "swap_left_right": False}])(sample())
    assert kept["captions"] == ["a white square on the left"]


def test_random_crop_keeps_boxes_inside_and_randaugment_runs():
    transform = make([{"type": "random_resized_crop", "scale": [0.3, 1.0]}, {"type": "randaugment", "magnitude": 9}])
    assert transform.resize is None  # the crop brings the image to size itself
    torch.manual_seed(0)
    for _ in range(20):
        out = transform(sample())
        assert out["image"].shape == (3, 20, 20)
        boxes = out["boxes"]
        assert ((boxes >= 0) & (boxes <= 20)).all() and (boxes[:, 2:] > boxes[:, :2]).all()


def test_same_sample_seed_same_augmentation():
    transform = make([{"type": "random_resized_crop", "scale": [0.2, 1.0]}, {"type": "colour_jitter"},
                      {"type": "gaussian_blur"}, {"type": "hflip"}, {"type": "randaugment"}])
    runs = []
    for _ in range(2):
        with sample_rng(7):
            runs.append(transform(sample()))
    assert torch.equal(runs[0]["image"], runs[1]["image"]) and torch.equal(runs[0]["boxes"], runs[1]["boxes"])


def test_text_only_sample_passes_through():
    out = make([{"type": "hflip", "p": 1.0}])({"captions": ["words only on the left"]})
    assert out["image"] is None and out["boxes"].shape == (0, 4)
    assert out["captions"] == ["words only on the left"]


def test_the_old_augment_object_is_refused_with_its_list_form():
    old = {"random_resized_crop": {"scale": [0.5, 1.0]}, "hflip": {}}
    assert legacy_augment(old) == [{"type": "random_resized_crop", "scale": [0.5, 1.0]}, {"type": "hflip"}]
    with pytest.raises(TypeError, match=r"is a list of augment components.*'type': 'random_resized_crop'"):
        build_augments({**DATA, "augment": old})


def test_unaugmented_transform_matches_its_parts():
    out = SampleTransform(**DATA)(sample())
    assert out["image"].shape == (3, 20, 20) and out["boxes"].shape == (1, 4)


def test_validate_names_a_bad_augment_by_its_path():
    from framework.validation import RecipeValidationError
    from tests.helpers import tiny_recipe

    with pytest.raises(RecipeValidationError) as info:
        tiny_recipe('data.augment=[{"type": "hflip"}, {"type": "grayscale", "p": 2}, {"type": "hfilp"}]')
    paths = [issue.path for issue in info.value.issues]
    assert paths == ["$.data.augment[1].p", "$.data.augment[2].type"]
    assert "did you mean 'hflip'" in str(info.value)
