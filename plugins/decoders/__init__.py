"""Built-in decoder and head components (registered through the `framework.plugins` entry point)."""

from framework.api import hookimpl

from . import cross_attention, heads, mlm_head, transformer

MODULES: list = [cross_attention, heads, mlm_head, transformer]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
