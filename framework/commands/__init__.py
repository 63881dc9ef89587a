"""Subcommands of the ``framework`` CLI; each module exposes ``register(subparsers)``."""
