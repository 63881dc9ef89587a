"""Package layout that pyproject.toml cannot state: folders installed under other names.

``plugins/`` installs as ``framework_plugins`` (a name this project owns, so a user's own
``plugins/`` cannot shadow it), and ``recipes/`` and ``schemas/`` install as the data
packages ``framework.recipes`` and ``framework.schemas`` (read with importlib.resources).
"""

from setuptools import find_packages, setup

BUILTINS = ["framework_plugins" + name[len("plugins"):] for name in find_packages(include=["plugins", "plugins.*"])]

setup(
    packages=(find_packages(include=["framework", "framework.*"]) + BUILTINS
              + ["framework.recipes", "framework.schemas"]),
    package_dir={"framework_plugins": "plugins", "framework.recipes": "recipes", "framework.schemas": "schemas"},
    package_data={"framework": ["py.typed"], "framework.recipes": ["*.json"], "framework.schemas": ["*.json"]},
)
