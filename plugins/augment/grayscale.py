"""Random grayscale (MoCo v2, TCL, VLMAE: p 0.2): the image becomes its luma in all three
channels, so the encoders see the same input shape."""

from __future__ import annotations

from torchvision.transforms import v2

from framework.api import AugmentSample, ComponentSpec

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "p": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.2,
              "description": "Probability of converting a sample to grayscale."},
    },
}


class Grayscale:
    """torchvision's ``RandomGrayscale`` (three equal channels)."""

    def __init__(self, *, p: float) -> None:
        self.transform = v2.RandomGrayscale(p=p)

    def __call__(self, sample: AugmentSample) -> AugmentSample:
        return sample._replace(image=self.transform(sample.image))


COMPONENTS = [
    ComponentSpec("augment", "grayscale", Grayscale, SCHEMA,
                  "Grayscale in three equal channels with probability p (MoCo v2 / TCL / VLMAE)."),
]
