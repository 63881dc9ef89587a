"""Built-in data components (registered through the `framework.plugins` entry point)."""

from framework import hookimpl
from plugins.data import synthetic

MODULES: list = [synthetic]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
