"""`framework list [KIND]`: every registered component with its provider, defining module
and doc, then the
plugins that failed to load (on stderr, so the table on stdout stays machine-readable)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from framework.commands.common import USER_ERRORS, fail
from framework.registry import KINDS, LoadFailure, default_registry, did_you_mean


def list_components(args: argparse.Namespace) -> int:
    try:
        registry = default_registry()
    except USER_ERRORS as exc:
        return fail(exc)
    if args.kind and args.kind not in KINDS:
        return fail(ValueError(f"unknown kind '{args.kind}'{did_you_mean(args.kind, KINDS)}; "
                               f"kinds: {', '.join(KINDS)}"))
    headers = ("KIND", "NAME", "PROVIDER", "MODULE", "DOC")
    rows = [(s.kind, s.name, s.provider, s.module, s.doc) for s in registry.specs(args.kind)]
    widths = [max([len(r[i]) for r in rows] + [len(h)]) for i, h in enumerate(headers[:-1])]
    for row in [headers, *rows]:
        print("  ".join(f"{cell:<{width}}" for cell, width in zip(row, widths)) + f"  {row[-1]}")
    print_failures(registry.failures)
    return 0


def print_failures(failures: Sequence[LoadFailure]) -> None:
    """The "broken plugins" section: each failed plugin or component, its distribution and why."""
    if not failures:
        return
    print(f"\nbroken plugins ({len(failures)}; a recipe that uses what they provide fails with the reason):",
          file=sys.stderr)
    for failure in failures:
        provides = ", ".join(f"{kind} '{name}'" for kind, name in failure.components) or "unknown components"
        print(f"  {failure.distribution} (plugin '{failure.plugin}', {provides}): {failure.reason}", file=sys.stderr)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("list", help="list registered components and plugins that failed to load")
    p.add_argument("kind", nargs="?", help=f"only this kind ({', '.join(KINDS)})")
    p.set_defaults(func=list_components)
