"""Built-in tokenizers components (registered through the `framework.plugins` entry point)."""

from framework.api import hookimpl

from . import pretrained, wordpiece

MODULES: list = [wordpiece, pretrained]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
