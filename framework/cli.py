"""The ``framework`` command line: one subcommand per module in ``framework.commands``."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from framework import __version__
from framework.commands import (
    bench,
    components,
    data,
    evaluate,
    export,
    info,
    pictures,
    recipes,
    run,
    scaffold,
)

COMMANDS = (run, recipes, components, info, data, evaluate, export, pictures, bench, scaffold)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="framework", description="Masked vision-language pretraining from JSON recipes.")
    parser.add_argument("--version", action="version", version=f"framework {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except OSError as exc:  # last resort: commands catch what they expect; a file system failure anywhere
        from framework.commands.common import fail

        return fail(exc)


if __name__ == "__main__":
    sys.exit(main())
