"""Built-in objectives (registered through the `framework.plugins` entry point)."""

from framework.api import hookimpl

from . import classification, feature_regression, itc, itm, mim, mlm, mrm, tokenizer_training

MODULES: list = [itc, itm, mim, mlm, feature_regression, tokenizer_training, mrm, classification]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
