"""The ``framework`` command line: one subcommand per module in ``framework.commands``."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from framework import __version__
from framework.commands import (
    bench,
    components,
    evaluate,
    info,
    pictures,
    recipes,
    run,
    scaffold,
)

COMMANDS = (run, recipes, components, info, evaluate, pictures, bench, scaffold)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="framework", description="Masked vision-language pretraining from JSON recipes.")
    parser.add_argument("--version", action="version", version=f"framework {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
