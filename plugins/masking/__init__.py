"""Built-in masking components (registered through the `framework.plugins` entry point)."""

from framework import hookimpl
from plugins.masking import mlm, random_patches

MODULES: list = [random_patches, mlm]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
