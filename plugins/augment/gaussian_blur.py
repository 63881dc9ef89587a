"""Random Gaussian blur as MoCo v2 applies it (and TCL and VLMAE after it): with
probability ``p``, PIL's Gaussian blur of radius sigma drawn uniformly from ``sigma``
pixels (MoCo v2: [0.1, 2.0], p 0.5). Photometric: boxes stay."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import ImageFilter

from framework.api import AugmentSample, ComponentSpec

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sigma": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 2, "maxItems": 2,
                  "default": [0.1, 2.0], "description": "Range [lo, hi] of the blur's standard deviation in pixels."},
        "p": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5, "description": "Probability of blurring."},
    },
}


class GaussianBlur:
    """Blur with a per-sample sigma; no kernel size to choose (PIL sizes it from sigma)."""

    def __init__(self, *, sigma: Sequence[float], p: float) -> None:
        if sigma[0] > sigma[1]:
            raise ValueError(f"gaussian_blur sigma [{sigma[0]}, {sigma[1]}]: the low end exceeds the high end")
        self.low, self.high, self.p = float(sigma[0]), float(sigma[1]), p

    def __call__(self, sample: AugmentSample) -> AugmentSample:
        if not torch.rand(()) < self.p:
            return sample
        sigma = self.low + (self.high - self.low) * float(torch.rand(()))
        return sample._replace(image=sample.image.filter(ImageFilter.GaussianBlur(radius=sigma)))


COMPONENTS = [
    ComponentSpec("augment", "gaussian_blur", GaussianBlur, SCHEMA,
                  "Gaussian blur with sigma drawn per sample, with probability p (MoCo v2 / TCL / VLMAE)."),
]
