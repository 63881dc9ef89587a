"""Every registered augment builds from its defaults and keeps the sample contract; each
built-in does what it says; schemas refuse bad params."""

from __future__ import annotations

import jsonschema
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from framework.data.transforms import AugmentSample
from framework.registry import BuildContext
from framework_plugins import augment as augment_plugin
from framework_plugins.augment.hflip import swap_left_right
from tests.helpers import registry_of

REGISTRY = registry_of(augment_plugin, "augment")
NAMES = REGISTRY.names("augment")
SIZE = 24


def build(config: dict):
    return REGISTRY.build("augment", config, BuildContext(REGISTRY, {"image_size": SIZE}))


def photo(width: int = SIZE, height: int = SIZE, seed: int = 0) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    return Image.fromarray((torch.rand(height, width, 3, generator=g) * 255).byte().numpy())


def augment_sample(image: Image.Image, boxes=((2, 3, 10, 12),), captions=("a dog on the left",)) -> AugmentSample:
    canvas = (image.height, image.width)
    box_tensor = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    return AugmentSample(image, tv_tensors.BoundingBoxes(box_tensor, format="XYXY", canvas_size=canvas),
                         list(captions))


def pixels(image: Image.Image) -> torch.Tensor:
    return v2.functional.pil_to_tensor(image).float()


def test_the_built_ins_are_registered():
    assert set(NAMES) == {"random_resized_crop", "hflip", "randaugment", "colour_jitter", "grayscale", "gaussian_blur"}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("with_boxes", [True, False])
def test_contract_from_defaults(name: str, with_boxes: bool):
    jsonschema.Draft202012Validator.check_schema(REGISTRY.get("augment", name).schema)
    augment = build({"type": name})
    boxes = ((2, 3, 10, 12),) if with_boxes else ()
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        outs.append(augment(augment_sample(photo(), boxes=boxes)))
    out = outs[0]
    assert isinstance(out, AugmentSample) and isinstance(out.image, Image.Image) and out.image.mode == "RGB"
    assert out.image.size == (SIZE, SIZE) and isinstance(out.boxes, tv_tensors.BoundingBoxes)
    assert tuple(out.boxes.canvas_size) == (SIZE, SIZE) and len(out.boxes) <= len(boxes)
    assert torch.equal(pixels(out.image), pixels(outs[1].image)) and out.captions == outs[1].captions  # seeded


def test_grayscale_gives_equal_channels():
    out = build({"type": "grayscale", "p": 1.0})(augment_sample(photo()))
    x = pixels(out.image)
    assert x.shape[0] == 3 and torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
    untouched = build({"type": "grayscale", "p": 0.0})(augment_sample(photo()))
    assert torch.equal(pixels(untouched.image), pixels(photo()))


def test_flip_swaps_left_and_right_unless_told_not_to():
    flipped = build({"type": "hflip", "p": 1.0})(augment_sample(photo(), captions=["left of the right leftover"]))
    assert flipped.captions == ["right of the left leftover"]
    assert torch.equal(pixels(flipped.image), pixels(photo()).flip(-1))
    assert flipped.boxes.tolist() == [[SIZE - 10, 3, SIZE - 2, 12]]
    plain = build({"type": "hflip", "p": 1.0, "swap_left_right": False})(augment_sample(photo()))
    assert plain.captions == ["a dog on the left"]
    never = build({"type": "hflip", "p": 0.0})(augment_sample(photo()))
    assert never.captions == ["a dog on the left"] and torch.equal(pixels(never.image), pixels(photo()))
    assert swap_left_right("Left and right") == "Left and left"  # whole lower-case words only


@pytest.mark.parametrize("scale", [(0.2, 1.0), (0.5, 0.6), (0.9, 1.0)])
def test_crop_area_stays_within_its_scale(scale, monkeypatch):
    augment = build({"type": "random_resized_crop", "scale": list(scale)})
    crop = augment.transform.transforms[0]
    areas = []
    original = crop.make_params

    def record(flat_inputs):
        params = original(flat_inputs)
        areas.append(params["height"] * params["width"] / (60 * 80))
        return params

    monkeypatch.setattr(crop, "make_params", record)
    torch.manual_seed(0)
    for i in range(40):
        out = augment(augment_sample(photo(80, 60, seed=i)))
        assert out.image.size == (SIZE, SIZE)
    # whole pixels: the area is the scale's, rounded to the pixel grid
    assert len(areas) == 40 and all(scale[0] - 0.05 <= a <= scale[1] + 0.02 for a in areas)
    assert max(areas) - min(areas) > 0.0


def test_randaugment_op_set_is_configurable():
    only = build({"type": "randaugment", "ops": ["Identity"], "num_ops": 3, "magnitude": 30})
    image = photo()
    assert torch.equal(pixels(only(augment_sample(image, boxes=())).image), pixels(image))
    assert list(only.any._AUGMENTATION_SPACE) == ["Identity"]
    geometric = build({"type": "randaugment", "ops": ["Rotate", "ShearX"]})
    assert geometric.boxed is None  # no photometric op: samples with boxes are left alone
    boxed = augment_sample(image)
    assert geometric(boxed) is boxed
    default = build({"type": "randaugment"})
    assert "Color" not in default.any._AUGMENTATION_SPACE and "Rotate" not in default.boxed._AUGMENTATION_SPACE


def test_colour_jitter_and_blur_change_pixels_not_boxes():
    for config in ({"type": "colour_jitter", "p": 1.0}, {"type": "gaussian_blur", "p": 1.0, "sigma": [1.0, 2.0]}):
        torch.manual_seed(1)
        sample = augment_sample(photo())
        out = build(config)(sample)
        assert not torch.equal(pixels(out.image), pixels(sample.image)), config
        assert torch.equal(out.boxes, sample.boxes) and out.captions == sample.captions


@pytest.mark.parametrize("config", [
    {"type": "random_resized_crop", "scale": [0.2, 1.5]},
    {"type": "random_resized_crop", "scale": [0.2]},
    {"type": "hflip", "p": 2},
    {"type": "hflip", "swap": True},
    {"type": "randaugment", "ops": ["Identity", "Blur"]},
    {"type": "randaugment", "ops": []},
    {"type": "colour_jitter", "hue": 0.7},
    {"type": "grayscale", "p": -0.1},
    {"type": "gaussian_blur", "sigma": [0, 1]},
])
def test_schemas_refuse_bad_params(config):
    schema = REGISTRY.get("augment", config["type"]).schema
    params = {k: v for k, v in config.items() if k != "type"}
    assert not jsonschema.Draft202012Validator(schema).is_valid(params)


@pytest.mark.parametrize("config", [{"type": "random_resized_crop", "scale": [0.9, 0.2]},
                                    {"type": "gaussian_blur", "sigma": [2.0, 0.1]}])
def test_reversed_ranges_are_refused_at_build(config):
    with pytest.raises(Exception, match="low end exceeds the high end"):
        build(config)
