"""Built-in data components (registered through the `framework.plugins` entry point)."""

from framework.api import hookimpl

from . import coco, files, karpathy, mixture, shards, synthetic

MODULES: list = [synthetic, files, coco, karpathy, shards, mixture]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
