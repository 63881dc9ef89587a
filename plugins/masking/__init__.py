"""Built-in masking components (registered through the `framework.plugins` entry point)."""

from framework.api import hookimpl

from . import block, drop, mlm, random_patches, region

MODULES: list = [random_patches, block, region, mlm, drop]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
