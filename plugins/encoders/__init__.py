"""Built-in encoders components (registered through the `framework.plugins` entry point)."""

from framework.api import hookimpl

from . import bert_text, embeddings, vit

MODULES: list = [vit, bert_text, embeddings]


@hookimpl
def framework_components():
    for module in MODULES:
        yield from module.COMPONENTS
