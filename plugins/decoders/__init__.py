"""Built-in decoder and head components (registered through the `framework.plugins` entry point)."""

from framework import hookimpl
from plugins.decoders import heads, transformer

MODULES: list = [heads, transformer]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
