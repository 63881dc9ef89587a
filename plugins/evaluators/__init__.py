"""Built-in evaluators (registered through the `framework.plugins` entry point)."""

from framework.api import hookimpl

from . import classification, linear_probe, reconstruction, retrieval, zero_shot

MODULES: list = [retrieval, zero_shot, linear_probe, reconstruction, classification]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
