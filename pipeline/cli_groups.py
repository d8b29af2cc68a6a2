"""Registering a command group (`catalog ...`, `archive ...`, `kafka ...`) on the operator CLI.

Why: each group is a subcommand with its own required sub-subcommand, whose
name lands in `args.<group>_command` (the catalog commands' error lines read
it). One helper keeps that convention in one place for every `cli_*` module.
"""

from __future__ import annotations

import argparse


def add_group(subparsers: argparse._SubParsersAction, name: str,
              help: str) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """Add the group `name` and return its parser and the action its commands are added to;
    the chosen command is `args.<name>_command`, and one must be given."""
    parser = subparsers.add_parser(name, help=help)
    return parser, parser.add_subparsers(dest=f"{name}_command", required=True)
