"""Built-in objectives (registered through the `framework.plugins` entry point)."""

from framework import hookimpl
from plugins.objectives import feature_regression, itc, itm, mim, mlm

MODULES: list = [itc, itm, mim, mlm, feature_regression]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
