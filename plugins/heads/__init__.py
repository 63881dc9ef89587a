"""Built-in task heads: downstream classifiers (registered through the `framework.plugins` entry point)."""

from framework.api import hookimpl

from . import classifier

MODULES: list = [classifier]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
