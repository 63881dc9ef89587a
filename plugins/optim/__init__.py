"""Built-in optimizer and learning-rate schedule components (registered through the
`framework.plugins` entry point)."""

from framework.api import hookimpl

from . import adamw, schedules

MODULES: list = [adamw, schedules]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
