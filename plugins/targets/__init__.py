"""Built-in reconstruction targets (registered through the `framework.plugins` entry point)."""

from framework.api import hookimpl

from . import discrete_tokens, pixels, teacher_features

MODULES: list = [pixels, teacher_features, discrete_tokens]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
