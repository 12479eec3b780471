"""What every page shares: the blueprint, the roles, the error page, the clock and the database."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, g, render_template

from swordfish.store.tenants import TENANT_ID_PATTERN

blueprint = Blueprint("console", __name__)  # templates: the app's (console/templates)
ADMIN, ANALYST, AUDITOR = "msp_admin", "analyst", "auditor"
PAGE_SIZES = (25, 50, 100)


def render_error(status: int, message: str | None):
    return render_template("error.html", status=status, message=message or ""), status


def now() -> datetime:
    return datetime.fromtimestamp(g.deps.clock(), UTC)


def time_arg(value: str | None, name: str) -> datetime | None:
    """A filter's date and time (ISO 8601; no zone means UTC), or None when empty; 400 when unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        abort(400, f"{name} must be a date and time like 2026-01-31T08:00")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def db():
    return g.deps.database.connection()


@blueprint.app_template_filter("tenant_ok")
def _tenant_ok(value: str) -> bool:
    return bool(TENANT_ID_PATTERN.match(value or ""))
