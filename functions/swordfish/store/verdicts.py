"""Verdict rows: written a whole batch per transaction, idempotent on (tenant_id, message_id)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg
import psycopg.rows
from psycopg.types.json import Jsonb

from swordfish.store.database import set_tenant


@dataclass
class VerdictRecord:
    tenant_id: str
    message_id: str
    verdict: str
    score: float
    reasons: list[dict]
    parse_problems: list[str]
    subject: str | None
    sender: str | None
    submitted_at: datetime
    sqs_sent_at: datetime | None
    degraded: bool = False
    deferred_work: list[str] = field(default_factory=list)
    flags_version: str | None = None
    correlation_id: str | None = None


@dataclass(frozen=True)
class StoredVerdict:
    tenant_id: str
    message_id: str
    inserted: bool  # False: a verdict for this message already existed (a redelivery or a duplicate)
    e2e_latency_ms: float | None


_INSERT = """
INSERT INTO verdicts (tenant_id, message_id, verdict, score, reasons, parse_problems, subject, sender,
                      submitted_at, sqs_sent_at, degraded, deferred_work, flags_version, correlation_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (tenant_id, message_id) DO NOTHING
RETURNING message_id, e2e_latency_ms
"""


def save_verdicts(conn: psycopg.Connection, records: list[VerdictRecord]) -> list[StoredVerdict]:
    """Insert every record inside the caller's transaction, switching the RLS tenant as it goes.

    Duplicates (same tenant and message id) are kept once: the first verdict stands. Results come
    back in the order of ``records``.
    """
    results: list[StoredVerdict | None] = [None] * len(records)
    # Insert in (tenant, message id) order: two batches holding the same messages (a redelivery
    # racing the original) then wait on each other instead of deadlocking.
    order = sorted(range(len(records)), key=lambda i: (records[i].tenant_id, records[i].message_id))
    current_tenant: str | None = None
    seen: set[tuple[str, str]] = set()
    with conn.cursor() as cur:
        for i in order:
            r = records[i]
            if r.tenant_id != current_tenant:
                set_tenant(conn, r.tenant_id)
                current_tenant = r.tenant_id
            if (r.tenant_id, r.message_id) in seen:  # the same message twice in one batch
                results[i] = StoredVerdict(r.tenant_id, r.message_id, False, None)
                continue
            seen.add((r.tenant_id, r.message_id))
            cur.execute(_INSERT, (
                r.tenant_id, r.message_id, r.verdict, r.score, Jsonb(r.reasons), Jsonb(r.parse_problems),
                _clean_text(r.subject), _clean_text(r.sender), r.submitted_at, r.sqs_sent_at, r.degraded,
                Jsonb(r.deferred_work), r.flags_version, r.correlation_id))
            row = cur.fetchone()
            results[i] = StoredVerdict(r.tenant_id, r.message_id, row is not None, row[1] if row else None)
    return results  # type: ignore[return-value]  # every slot is filled above


def list_verdicts(conn: psycopg.Connection, tenant_id: str, *, limit: int = 50,
                  verdict: str | None = None, before: datetime | None = None) -> list[dict]:
    """Newest first. The caller's transaction must already be scoped to ``tenant_id``."""
    set_tenant(conn, tenant_id)
    clauses, params = ["tenant_id = %s"], [tenant_id]
    if verdict:
        clauses.append("verdict = %s")
        params.append(verdict)
    if before:
        clauses.append("committed_at < %s")
        params.append(before)
    params.append(limit)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(
            "SELECT tenant_id, message_id, verdict, score, reasons, parse_problems, subject, sender, "
            "submitted_at, sqs_sent_at, committed_at, e2e_latency_ms, degraded, deferred_work, flags_version, "
            f"correlation_id FROM verdicts WHERE {' AND '.join(clauses)} ORDER BY committed_at DESC LIMIT %s",
            params)
        return cur.fetchall()


def get_verdict(conn: psycopg.Connection, tenant_id: str, message_id: str) -> dict | None:
    set_tenant(conn, tenant_id)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("SELECT * FROM verdicts WHERE tenant_id = %s AND message_id = %s", (tenant_id, message_id))
        return cur.fetchone()


def _clean_text(value: str | None, limit: int = 998) -> str | None:
    # PostgreSQL text cannot hold NUL; headers can (malformed mail). Subject lines are capped too.
    return None if value is None else value.replace("\x00", "")[:limit]
