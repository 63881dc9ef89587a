"""Built-in data components (registered through the `framework.plugins` entry point)."""

from framework import hookimpl

from . import coco, files, mixture, shards, synthetic

MODULES: list = [synthetic, files, coco, shards, mixture]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
