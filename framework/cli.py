"""The ``framework`` command line: one subcommand per module in ``framework.commands``.

Command modules import torch and the plugins; ``framework --help`` and a misspelt
subcommand need neither, so the parser imports only the module of the subcommand being
run. :data:`SUBCOMMANDS` names each subcommand's module and one-line help (a test checks
them against what the modules register).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from framework import __version__

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "train a recipe"),
    "recipes": ("recipes", "list the built-in recipes with a one-line description"),
    "cp": ("recipes", "copy a built-in recipe to edit it"),
    "validate": ("recipes", "check a recipe and report every problem"),
    "schema": ("recipes", "write the combined recipe schema editors use"),
    "diff": ("recipes", "differences between two resolved recipes (how ablations read)"),
    "list": ("components", "list registered components and plugins that failed to load"),
    "info": ("info", "parameter counts per component and FLOPs per sample"),
    "data": ("data", "work on a recipe's data: `framework data check RECIPE`"),
    "eval": ("evaluate", "evaluate a run (or a recipe's untrained model)"),
    "export": ("export", "save a run's image encoder for timm or its text encoder for transformers"),
    "plot": ("pictures", "training curves of a run as a PNG"),
    "masks": ("pictures", "picture what every view of a recipe masks"),
    "bench": ("bench", "time training steps: samples/s, phases, memory, FLOPs, MFU"),
    "new-plugin": ("scaffold", "scaffold a plugin package (pyproject, entry point, component, test)"),
}
"""Subcommand -> (module in ``framework.commands``, one-line help), in ``--help`` order."""

MODULES = tuple(dict.fromkeys(module for module, _ in SUBCOMMANDS.values()))


def command_module(name: str) -> ModuleType:
    return importlib.import_module(f"framework.commands.{name}")


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs (its first non-option word), if it is one."""
    word = next((arg for arg in argv if not arg.startswith("-")), None)
    return word if word in SUBCOMMANDS else None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the module of the subcommand it names registers its
    arguments (the others appear by name and help), else every module does."""
    parser = argparse.ArgumentParser(prog="framework",
                                     description="Masked vision-language pretraining from JSON recipes.")
    parser.add_argument("--version", action="version", version=f"framework {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = _chosen(argv) if argv is not None else None
    loaded = MODULES if argv is None else ((SUBCOMMANDS[chosen][0],) if chosen else ())
    registered: set[str] = set()
    for name, (module, help_text) in SUBCOMMANDS.items():
        if module in loaded and name not in registered:
            before = set(subparsers.choices)
            command_module(module).register(subparsers)
            registered |= set(subparsers.choices) - before
        elif name not in registered:
            subparsers.add_parser(name, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return args.func(args)
    except OSError as exc:  # last resort: commands catch what they expect; a file system failure anywhere
        from framework.commands.common import fail

        return fail(exc)


if __name__ == "__main__":
    sys.exit(main())
