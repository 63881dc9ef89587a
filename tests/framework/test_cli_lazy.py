"""The CLI imports only the module of the subcommand it runs; its table matches the modules."""

from __future__ import annotations

import argparse
import subprocess
import sys

from framework.cli import MODULES, SUBCOMMANDS, build_parser, command_module


def _helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest: choice.help for choice in sub._choices_actions}


def test_the_table_names_every_subcommand_each_module_registers_with_its_help():
    registered = {}
    for module in MODULES:
        scratch = argparse.ArgumentParser().add_subparsers()
        command_module(module).register(scratch)
        registered.update({choice.dest: (module, choice.help) for choice in scratch._choices_actions})
    assert registered == SUBCOMMANDS
    assert _helps(build_parser()) == _helps(build_parser(["--help"])) == {k: v for k, (_, v) in SUBCOMMANDS.items()}


def test_help_and_a_subcommands_parser_import_no_torch_beyond_that_subcommand():
    code = ("import sys; from framework.cli import build_parser; build_parser(['--help']); "
            "assert 'torch' not in sys.modules, 'torch imported'; build_parser(['scaffold-typo']); "
            "assert 'torch' not in sys.modules; p = build_parser(['bench', 'tiny']); "
            "assert p.parse_args(['bench', 'tiny', '--steps', '2']).steps == 2")
    subprocess.run([sys.executable, "-c", code], check=True)
