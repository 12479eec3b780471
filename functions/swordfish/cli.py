"""`swordfish`: the command line for operators and developers.

Each feature adds its subcommands in a ``commands.py`` module with ``register(subparsers)``; the
module is listed in COMMAND_MODULES and imported only when the CLI runs, so the Lambda asset never
pays for it. Subcommand handlers receive the parsed args and return an exit code.

The installed `swordfish` command is `devstack.cli:main`, which first points unset settings at a
running `make serve` stack; this module itself knows nothing of the devstack.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = [
    "swordfish.analysis.commands",
    "swordfish.monitoring.commands",
    "swordfish.store.commands",
    "swordfish.pipeline.commands",
    "swordfish.features.commands",
    "swordfish.resilience.commands",
    "swordfish.api.commands",
    "swordfish.security.commands",
    "swordfish.console.commands",
    "swordfish.backup.commands",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="swordfish", description="Swordfish email-security pipeline")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of one top-level command, so an entry point can add subcommands to it."""
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return commands.choices[name]


def main(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    args = (parser or build_parser()).parse_args(argv)
    from swordfish.monitoring.observability import logs_to_stderr

    try:
        with logs_to_stderr():
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `swordfish analyze ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
