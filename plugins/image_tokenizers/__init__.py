"""Built-in image tokenizers (registered through the `framework.plugins` entry point)."""

from framework.api import hookimpl

from . import dvae, vq

MODULES: list = [vq, dvae]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
