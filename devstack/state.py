"""Where a running `make serve` leaves its coordinates, so `swordfish submit` etc. can find it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from devstack.services import REPO_ROOT

STATE_FILE = Path(os.environ.get("SWORDFISH_STACK_FILE", REPO_ROOT / ".devstack" / "stack.json"))


def write_state(data: dict) -> Path:
    STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.chmod(0o600)  # holds database passwords and API keys
    tmp.replace(STATE_FILE)
    return STATE_FILE


def read_state() -> dict:
    if not STATE_FILE.exists():
        raise SystemExit(f"no running stack found ({STATE_FILE} is missing): start one with `make serve`")
    return json.loads(STATE_FILE.read_text())


def clear_state() -> None:
    STATE_FILE.unlink(missing_ok=True)


def apply_stack_env() -> dict:
    """Point this process's settings at the running stack (unless SWORDFISH_* are already set)."""
    state = read_state()
    for key, value in state["env"].items():
        os.environ.setdefault(key, value)
    from swordfish.config import get_settings

    get_settings.cache_clear()
    return state
