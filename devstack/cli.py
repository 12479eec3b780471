"""The `swordfish` command as installed by `make install`: finds a running `make serve` stack, then
runs `swordfish.cli`. Here and not in `swordfish.cli` because the Lambda asset ships `swordfish`
without the devstack: nothing under functions/ imports devstack."""

from __future__ import annotations

import os
import sys

from swordfish import cli
from swordfish.backup import commands as backup_commands
from swordfish.config import get_settings


def use_running_stack() -> None:
    """With `make serve` running, point unset SWORDFISH_* settings at it (set ones are kept)."""
    from devstack.state import STATE_FILE, apply_stack_env, read_state

    if not STATE_FILE.exists():
        return
    configured = os.environ.get("SWORDFISH_DATABASE_URL") and os.environ.get("SWORDFISH_EMAILS_QUEUE_URL")
    state = read_state() if configured else apply_stack_env()
    for variable, key in (("SWORDFISH_ADMIN_DATABASE_URL", "owner_url"),
                          ("SWORDFISH_SUPERUSER_DATABASE_URL", "superuser_url")):
        if state.get(key):
            os.environ.setdefault(variable, state[key])
    get_settings.cache_clear()


def main(argv: list[str] | None = None) -> int:
    use_running_stack()
    backup_commands.drill_runner = run_drill  # the drill starts embedded servers: devstack only
    return cli.main(argv)


def run_drill(args) -> int:
    from devstack.drill import run_from_args  # imported only for `swordfish backup drill`

    return run_from_args(args)


if __name__ == "__main__":
    sys.exit(main())
