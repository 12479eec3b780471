"""Who is running an operator command, for the audit trail.

In order: ``--actor``, ``SWORDFISH_OPERATOR``, the person behind ``sudo`` (``SUDO_USER``, which sudo
sets), the login name. A shared ``root`` login names nobody, so a change made as root without one
of the first three is refused: the audit trail must say which person made it.
"""

from __future__ import annotations

import getpass

from swordfish.config import get_settings

ANONYMOUS = frozenset({"root", ""})


class UnknownOperator(RuntimeError):
    pass


def operator_identity(explicit: str | None = None) -> str:
    settings = get_settings()
    candidates = [explicit, settings.operator, settings.sudo_user, _login_name()]
    for candidate in candidates:
        name = (candidate or "").strip()
        if name and name not in ANONYMOUS:
            return name[:254]
    raise UnknownOperator("who is making this change? set SWORDFISH_OPERATOR=you@msp.example or pass "
                          "--actor (a change made as root would be audited as nobody)")


def _login_name() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
