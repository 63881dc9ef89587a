"""Random resized crop (Inception; ALBEF and M3AE crop 20-100% of the area): a crop of
random area fraction and aspect ratio, resized to ``image_size``; boxes are cut to it."""

from __future__ import annotations

from collections.abc import Sequence

from torchvision.transforms import InterpolationMode, v2

from framework.api import FIT_BOXES, AugmentSample, ComponentSpec


def _range(low: float, high: float, what: str) -> dict:
    return {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 2, "maxItems": 2,
            "default": [low, high], "description": what}


SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "scale": {**_range(0.5, 1.0, "Range [lo, hi] of the crop's fraction of the image area (ALBEF, M3AE: "
                                     "[0.2, 1.0])."), "items": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}},
        "ratio": _range(0.75, 1.3333333333, "Range [lo, hi] of the crop's aspect ratio (width / height)."),
    },
}


class RandomResizedCrop:
    """torchvision's ``RandomResizedCrop`` (bicubic, antialiased) with boxes clipped to the crop."""

    resizes = True

    def __init__(self, *, scale: Sequence[float], ratio: Sequence[float], context) -> None:
        for name, (low, high) in (("scale", scale), ("ratio", ratio)):
            if low > high:
                raise ValueError(f"random_resized_crop {name} [{low}, {high}]: the low end exceeds the high end")
        self.scale, self.ratio = (float(scale[0]), float(scale[1])), (float(ratio[0]), float(ratio[1]))
        crop = v2.RandomResizedCrop(context["image_size"], scale=self.scale, ratio=self.ratio,
                                    interpolation=InterpolationMode.BICUBIC, antialias=True)
        self.transform = v2.Compose([crop, FIT_BOXES])

    def __call__(self, sample: AugmentSample) -> AugmentSample:
        image, boxes = self.transform(sample.image, sample.boxes)
        return sample._replace(image=image, boxes=boxes)


COMPONENTS = [
    ComponentSpec("augment", "random_resized_crop", RandomResizedCrop, SCHEMA,
                  "Crop of random area (scale) and aspect ratio, resized to image_size; boxes follow."),
]
