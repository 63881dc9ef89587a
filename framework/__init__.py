"""Masked vision-language pretraining from JSON recipes of pluggable components."""

from importlib.metadata import PackageNotFoundError, version

from framework.hookspecs import API_VERSION, hookimpl
from framework.registry import ComponentSpec

try:
    __version__ = version("framework")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["API_VERSION", "ComponentSpec", "hookimpl", "__version__"]
