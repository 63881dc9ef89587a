"""Built-in teachers (registered through the `framework.plugins` entry point)."""

from framework.api import hookimpl

from . import ema

MODULES: list = [ema]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
