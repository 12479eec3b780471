"""The quarantine ledger: which mailbox messages Swordfish moved to Junk Email, and their release.

Written by the remediator once Nango confirmed a move (``record_quarantine``); read and flipped by a
release (``release_from_quarantine``), which the console and the API both use, so the rules are
one: only a message in the ledger as quarantined can be released, the move back happens through the
``Releaser`` port (Nango, behind its circuit breaker) while the row is locked, and the row is marked
released only after the mailbox confirmed it. Any failure rolls the transaction back: nothing is
marked released that was not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
import psycopg.rows
from psycopg.types.json import Jsonb

from swordfish.pipeline.ports import NotQuarantined, QuarantineEntry, Releaser
from swordfish.store.database import set_tenant
from swordfish.store.storable import storable_json, storable_text


@dataclass(frozen=True)
class Released:
    entry: QuarantineEntry
    provider_message_id: str  # the id in the inbox after the move back
    released_at: datetime


def record_quarantine(conn: psycopg.Connection, entry: QuarantineEntry) -> None:
    """After a successful move to Junk Email (a second quarantine of a released message re-arms it)."""
    set_tenant(conn, entry.tenant_id)
    conn.execute(
        "INSERT INTO mailbox_quarantines (tenant_id, message_id, connection_id, provider_config_key, "
        "provider_message_id) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (tenant_id, message_id) DO UPDATE SET "
        "connection_id = EXCLUDED.connection_id, provider_config_key = EXCLUDED.provider_config_key, "
        "provider_message_id = EXCLUDED.provider_message_id, state = 'quarantined', "
        "quarantined_at = clock_timestamp(), released_at = NULL, released_by = NULL",
        (entry.tenant_id, entry.message_id, entry.connection_id, entry.provider_config_key,
         entry.provider_message_id))


def quarantine_state(conn: psycopg.Connection, tenant_id: str, message_id: str) -> dict | None:
    set_tenant(conn, tenant_id)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute("SELECT state, quarantined_at, released_at, released_by, provider_message_id "
                           "FROM mailbox_quarantines "
                           "WHERE tenant_id = %s AND message_id = %s", (tenant_id, message_id)).fetchone()


def release_from_quarantine(conn: psycopg.Connection, tenant_id: str, message_id: str, releaser: Releaser,
                            *, actor: str, note: str | None = None) -> Released:
    """Move the message back to the inbox and record it, inside the caller's transaction.

    Raises ``NotQuarantined`` (never quarantined, or already released), or whatever the releaser
    raises (``ReleaseFailed``): the caller's transaction then rolls back, so nothing is marked.
    The row lock makes two analysts releasing at once call Nango once: the second waits, then sees
    'released'."""
    set_tenant(conn, tenant_id)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("SELECT * FROM mailbox_quarantines WHERE tenant_id = %s AND message_id = %s FOR UPDATE",
                          (tenant_id, message_id)).fetchone()
    if row is None:
        raise NotQuarantined("this message was never quarantined by Swordfish: there is nothing to release")
    if row["state"] != "quarantined":
        raise NotQuarantined(f"this message was already released by {row['released_by']} at "
                             f"{row['released_at']:%Y-%m-%d %H:%M} UTC")
    entry = QuarantineEntry(tenant_id=tenant_id, message_id=message_id, connection_id=row["connection_id"],
                            provider_config_key=row["provider_config_key"],
                            provider_message_id=row["provider_message_id"])
    new_id = releaser.release(entry)
    actor = storable_text(actor, 254) or "unknown"
    released_at = conn.execute(
        "UPDATE mailbox_quarantines SET state = 'released', released_at = clock_timestamp(), released_by = %s, "
        "provider_message_id = %s WHERE tenant_id = %s AND message_id = %s RETURNING released_at",
        (actor, new_id or entry.provider_message_id, tenant_id, message_id)).fetchone()[0]
    conn.execute("INSERT INTO verdict_releases (tenant_id, message_id, actor, note) VALUES (%s, %s, %s, %s)",
                 (tenant_id, message_id, actor, storable_text(note, 2000) or ""))
    return Released(entry, new_id or entry.provider_message_id, released_at)


class PostgresQuarantineLedger:
    """``QuarantineLedger`` port on PostgreSQL: one short transaction per successful quarantine."""

    def __init__(self, database):
        self.database = database

    def record_quarantine(self, entry: QuarantineEntry) -> None:
        with self.database.connection() as conn, conn.transaction():
            record_quarantine(conn, entry)


def audit_release(conn: psycopg.Connection, *, actor: str, actor_role: str, tenant_id: str, message_id: str,
                  outcome: str, after: dict) -> None:
    """A release attempt in the append-only audit (``console_audit``), from the console or the API."""
    conn.execute(
        "INSERT INTO console_audit (actor, actor_role, action, tenant_id, object_type, object_id, outcome, after) "
        "VALUES (%s, %s, 'verdict.release', %s, 'verdict', %s, %s, %s)",
        (storable_text(actor, 254) or "unknown", actor_role, tenant_id, storable_text(message_id, 512), outcome,
         Jsonb(storable_json(after))))
