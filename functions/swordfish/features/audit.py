"""The append-only flag audit table (migration 0010_flag_audit.sql): write and read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from swordfish.store.storable import storable_json

CLI_SOURCE = "cli"
DEPLOYMENT_SOURCE = "appconfig-deployment"


@dataclass(frozen=True)
class AuditEntry:
    store: str  # ConfigurationRepository.key: application/environment/profile
    actor: str
    action: str
    flag_name: str | None
    before: Any
    after: Any
    config_version: str
    previous_version: str | None = None
    reason: str | None = None
    source: str = CLI_SOURCE
    event_id: str | None = None


@dataclass(frozen=True)
class AuditRow:
    audit_id: int
    changed_at: datetime
    store: str
    actor: str
    source: str
    action: str
    flag_name: str | None
    before: Any
    after: Any
    config_version: str
    previous_version: str | None
    reason: str | None
    event_id: str | None


def _json(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(storable_json(value))


def record(conn: psycopg.Connection, entry: AuditEntry) -> int | None:
    """Insert one row; returns its id, or None when the event id was already recorded."""
    row = conn.execute(
        """INSERT INTO flag_audit (store, actor, source, action, flag_name, before, after, config_version,
                                   previous_version, reason, event_id)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (event_id) DO NOTHING
           RETURNING audit_id""",
        (
            entry.store,
            entry.actor,
            entry.source,
            entry.action,
            entry.flag_name,
            _json(entry.before),
            _json(entry.after),
            entry.config_version,
            entry.previous_version,
            entry.reason,
            entry.event_id,
        ),
    ).fetchone()
    return row[0] if row else None


_COLUMNS = (
    "audit_id, changed_at, store, actor, source, action, flag_name, before, after, config_version, "
    "previous_version, reason, event_id"
)


def history(
    conn: psycopg.Connection, store: str, flag_name: str | None = None, limit: int = 50
) -> list[AuditRow]:
    """Newest first."""
    with conn.cursor(row_factory=class_row(AuditRow)) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM flag_audit WHERE store = %s AND (%s::text IS NULL OR flag_name = %s) "
            "ORDER BY audit_id DESC LIMIT %s",
            (store, flag_name, flag_name, limit),
        )
        return cur.fetchall()


def last_changes(conn: psycopg.Connection, store: str) -> dict[str, datetime]:
    """When each flag last changed (any source)."""
    rows = conn.execute(
        "SELECT flag_name, max(changed_at) FROM flag_audit WHERE store = %s AND flag_name IS NOT NULL "
        "GROUP BY flag_name",
        (store,),
    ).fetchall()
    return {name: changed for name, changed in rows}


def latest_version(conn: psycopg.Connection, store: str, *, other_than: str | None = None) -> str | None:
    row = conn.execute(
        "SELECT config_version FROM flag_audit WHERE store = %s AND config_version IS DISTINCT FROM %s "
        "ORDER BY audit_id DESC LIMIT 1",
        (store, other_than),
    ).fetchone()
    return row[0] if row else None


def event_recorded(conn: psycopg.Connection, event_id: str) -> bool:
    """Whether any row came from this EventBridge event (rows carry ``<event id>/<flag or *>``)."""
    return (
        conn.execute(
            "SELECT 1 FROM flag_audit WHERE starts_with(event_id, %s) LIMIT 1", (event_id + "/",)
        ).fetchone()
        is not None
    )


def version_recorded(conn: psycopg.Connection, store: str, version: str, source: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM flag_audit WHERE store = %s AND config_version = %s AND source = %s LIMIT 1",
            (store, version, source),
        ).fetchone()
        is not None
    )
