"""Built-in augment components (registered through the `framework.plugins` entry point).

Each is called as ``augment(AugmentSample) -> AugmentSample`` (see
:mod:`framework.data.transforms`) and draws from torch's per-sample seeded CPU generator.
"""

from framework.api import hookimpl

from . import colour_jitter, gaussian_blur, grayscale, hflip, randaugment, random_resized_crop

MODULES: list = [random_resized_crop, hflip, randaugment, colour_jitter, grayscale, gaussian_blur]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
