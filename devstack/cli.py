"""The `swordfish` command as installed by `make install`: finds a running `make serve` stack, then
runs `swordfish.cli`. Here and not in `swordfish.cli` because the Lambda asset ships `swordfish`
without the devstack: nothing under functions/ imports devstack."""

from __future__ import annotations

import os
import sys

from swordfish import cli


def use_running_stack() -> None:
    """With `make serve` running, point unset SWORDFISH_* settings at it (set ones are kept)."""
    from devstack.state import STATE_FILE, apply_stack_env

    configured = os.environ.get("SWORDFISH_DATABASE_URL") and os.environ.get("SWORDFISH_EMAILS_QUEUE_URL")
    if configured or not STATE_FILE.exists():
        return
    state = apply_stack_env()
    if state.get("owner_url"):
        os.environ.setdefault("SWORDFISH_ADMIN_DATABASE_URL", state["owner_url"])
    if state.get("superuser_url"):
        os.environ.setdefault("SWORDFISH_BACKUP_SUPERUSER_URL", state["superuser_url"])


def build_parser():
    """swordfish.cli's parser plus the commands that need the devstack itself."""
    from devstack import backup_drill

    parser = cli.build_parser()
    backup_drill.register(cli.command_parser(parser, "backup").subcommands)
    return parser


def main(argv: list[str] | None = None) -> int:
    use_running_stack()
    return cli.main(argv, parser=build_parser())


if __name__ == "__main__":
    sys.exit(main())
