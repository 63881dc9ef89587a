"""Built-in fusion components (registered through the `framework.plugins` entry point)."""

from framework.api import hookimpl

from . import bert_concat, cross_attention, two_stream, unified

MODULES: list = [bert_concat, cross_attention, two_stream, unified]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
