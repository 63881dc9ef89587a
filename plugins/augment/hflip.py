"""Horizontal flip. A flip makes "on the left" false, so by default the words ``left`` and
``right`` are swapped in the captions of a flipped sample; ALBEF and M3AE flip without
touching captions (``swap_left_right: false``)."""

from __future__ import annotations

import re

import torch
from torchvision.transforms import v2

from framework.api import AugmentSample, ComponentSpec

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "p": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5, "description": "Flip probability."},
        "swap_left_right": {"type": "boolean", "default": True,
                            "description": "Swap the words 'left' and 'right' in the captions of flipped samples."},
    },
}

_LEFT_RIGHT = re.compile(r"\b(left|right)\b")


def swap_left_right(text: str) -> str:
    """``"a circle on the left"`` -> ``"a circle on the right"`` (whole words only)."""
    return _LEFT_RIGHT.sub(lambda m: "right" if m.group(1) == "left" else "left", text)


class HorizontalFlip:
    """Flip the image and its boxes with probability ``p`` (one draw per sample)."""

    def __init__(self, *, p: float, swap_left_right: bool) -> None:
        self.p, self.swap_left_right = p, swap_left_right

    def __call__(self, sample: AugmentSample) -> AugmentSample:
        if not torch.rand(()) < self.p:
            return sample
        image, boxes = v2.functional.horizontal_flip(sample.image), v2.functional.horizontal_flip(sample.boxes)
        captions = sample.captions
        if self.swap_left_right and captions:
            captions = [swap_left_right(c) for c in captions]
        return AugmentSample(image, boxes, captions)


COMPONENTS = [
    ComponentSpec("augment", "hflip", HorizontalFlip, SCHEMA,
                  "Horizontal flip of image and boxes, swapping 'left'/'right' in captions unless told not to."),
]
