"""Built-in reconstruction targets (registered through the `framework.plugins` entry point)."""

from framework import hookimpl
from plugins.targets import pixels, teacher_features

MODULES: list = [pixels, teacher_features]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
