"""The components plugin of framework-hog: one module listed in the entry-point group.

``FRAMEWORK_API_VERSION`` says which plugin API this was written for; a framework with
another version refuses the plugin (naming this distribution) instead of failing later.
"""

from __future__ import annotations

from typing import Iterator

from framework.api import ComponentSpec, hookimpl
from framework_hog import checkerboard, hog

FRAMEWORK_API_VERSION = 1


@hookimpl
def framework_components() -> Iterator[ComponentSpec]:
    yield from hog.COMPONENTS
    yield from checkerboard.COMPONENTS
