"""Built-in fusion components (registered through the `framework.plugins` entry point)."""

from framework import hookimpl

from . import cross_attention, two_stream, unified

MODULES: list = [cross_attention, two_stream, unified]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
