"""Built-in objectives (registered through the `framework.plugins` entry point)."""

from framework import hookimpl
from plugins.objectives import itc, itm, mim, mlm

MODULES: list = [itc, itm, mim, mlm]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
