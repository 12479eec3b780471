"""Verdict rows: written a whole batch per transaction, idempotent on (tenant_id, message_id)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg
import psycopg.rows
from psycopg.types.json import Jsonb

from swordfish.analysis.trace import TraceFields
from swordfish.store.database import like_literal, set_tenant
from swordfish.store.response_jobs import record_mailbox
from swordfish.store.storable import storable_json, storable_text
from swordfish.store.traces import insert_trace


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
    # Where the raw submission is archived (object key, line): the console re-reads the message from it.
    raw_archive_key: str | None = None
    raw_archive_line: int | None = None
    content_sha256: str | None = None  # hex digest of the raw MIME: a reused message_id is told apart
    trace: TraceFields | None = None  # recipients, links, attachments...: stored beside it (issue 28)
    # Mail from a connected mailbox: (Nango connection, provider config key, provider message id), so a
    # bulk response can reach this copy later (store.response_jobs).
    mailbox: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class StoredVerdict:
    tenant_id: str
    message_id: str
    inserted: bool  # False: a verdict for this message already existed (a redelivery or a duplicate)
    e2e_latency_ms: float | None
    # Not inserted, and the stored verdict is for different content: the message_id was reused.
    conflicting_sha256: str | None = None
    committed_at: datetime | None = None  # when inserted: the row's commit time (the trace's too)


_INSERT = """
INSERT INTO verdicts (tenant_id, message_id, verdict, score, reasons, parse_problems, subject, sender,
                      submitted_at, sqs_sent_at, degraded, deferred_work, flags_version, correlation_id,
                      raw_archive_key, raw_archive_line, content_sha256)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (tenant_id, message_id) DO NOTHING
RETURNING message_id, e2e_latency_ms, committed_at
"""


def save_verdicts(conn: psycopg.Connection, records: list[VerdictRecord]) -> list[StoredVerdict]:
    """Insert every record inside the caller's transaction, switching the RLS tenant as it goes.

    Duplicates (same tenant and message id) are kept once: the first verdict stands. Results come
    back in the order of ``records``. Any refused row fails the whole transaction: the caller falls
    back to ``save_verdicts_each`` to find which.
    """
    results = _save(conn, records, isolate=False)
    return results  # type: ignore[return-value]  # without isolation every slot holds a StoredVerdict


def save_verdicts_each(conn: psycopg.Connection,
                       records: list[VerdictRecord]) -> list[StoredVerdict | psycopg.Error]:
    """Like ``save_verdicts``, but each row under its own savepoint: a row PostgreSQL refuses comes
    back as its error, and the rest of the transaction goes on. Connection-level errors still raise."""
    return _save(conn, records, isolate=True)


def _save(conn: psycopg.Connection, records: list[VerdictRecord], *, isolate: bool) -> list:
    results: list = [None] * len(records)
    # Insert in (tenant, message id) order: two batches holding the same messages (a redelivery
    # racing the original) then wait on each other instead of deadlocking.
    order = sorted(range(len(records)), key=lambda i: (records[i].tenant_id, records[i].message_id))
    current_tenant: str | None = None
    seen: dict[tuple[str, str], str | None] = {}  # -> the content digest stored first
    with conn.cursor() as cur:
        for i in order:
            r = records[i]
            if r.tenant_id != current_tenant:
                set_tenant(conn, r.tenant_id)
                current_tenant = r.tenant_id
            if (r.tenant_id, r.message_id) in seen:  # the same message id twice in one batch
                first = seen[(r.tenant_id, r.message_id)]
                conflicting = first if first and r.content_sha256 and first != r.content_sha256 else None
                results[i] = StoredVerdict(r.tenant_id, r.message_id, False, None, conflicting)
                continue
            if not isolate:
                results[i] = _insert(cur, r)
            else:
                try:
                    with conn.transaction():  # a savepoint: a refused row rolls back alone
                        results[i] = _insert(cur, r)
                except psycopg.Error as exc:
                    if not is_row_error(exc):
                        raise
                    results[i] = exc
                    continue
            seen[(r.tenant_id, r.message_id)] = r.content_sha256
    return results


def _insert(cur: psycopg.Cursor, r: VerdictRecord) -> StoredVerdict:
    cur.execute(_INSERT, (
        r.tenant_id, r.message_id, r.verdict, r.score, Jsonb(storable_json(r.reasons)),
        Jsonb(storable_json(r.parse_problems)), storable_text(r.subject, SUBJECT_LIMIT),
        storable_text(r.sender, SUBJECT_LIMIT), r.submitted_at, r.sqs_sent_at, r.degraded,
        Jsonb(storable_json(r.deferred_work)), storable_text(r.flags_version, 128),
        storable_text(r.correlation_id, 256), r.raw_archive_key, r.raw_archive_line, r.content_sha256))
    row = cur.fetchone()
    if row is not None:
        if r.trace is not None:
            insert_trace(cur, r.tenant_id, r.message_id, row[2], verdict=r.verdict, score=r.score,
                         reasons=r.reasons, subject=r.subject, sender=r.sender, trace=r.trace)
        if r.mailbox is not None:
            record_mailbox(cur, r.tenant_id, r.message_id, r.mailbox)
        return StoredVerdict(r.tenant_id, r.message_id, True, row[1], committed_at=row[2])
    conflicting = None
    if r.content_sha256:  # a duplicate: the same message again, or another message under its id?
        cur.execute("SELECT content_sha256 FROM verdicts WHERE tenant_id = %s AND message_id = %s",
                    (r.tenant_id, r.message_id))
        existing = cur.fetchone()
        if existing and existing[0] and existing[0] != r.content_sha256:
            conflicting = existing[0]
    return StoredVerdict(r.tenant_id, r.message_id, False, None, conflicting)


SUBJECT_LIMIT = 998  # RFC 5322's line limit: longer subjects are cut (the analysis saw them whole)

# SQLSTATE classes that say the server or the connection is in trouble, not the row: retry the batch.
_ENVIRONMENT_CLASSES = frozenset({"08", "40", "53", "57", "58", "XX"})


def is_row_error(exc: BaseException) -> bool:
    """True when PostgreSQL refused a row's data (bad value, constraint, trigger, size limit);
    False when the connection or the server failed, which would fail any row."""
    error = exc if isinstance(exc, psycopg.Error) else exc.__cause__
    sqlstate = getattr(error, "sqlstate", None)
    return isinstance(error, psycopg.Error) and bool(sqlstate) and sqlstate[:2] not in _ENVIRONMENT_CLASSES


def verdict_filters(tenant_id: str, *, verdict: str | None = None, since: datetime | None = None,
                    until: datetime | None = None, sender: str | None = None,
                    subject: str | None = None) -> tuple[list[str], list]:
    """WHERE clauses and their bound parameters for one tenant's verdicts: the one builder the API
    and the console share. Sender and subject are substring matches with LIKE's wildcards escaped."""
    clauses, params = ["tenant_id = %s"], [tenant_id]
    if verdict:
        clauses.append("verdict = %s")
        params.append(verdict)
    if since:
        clauses.append("committed_at >= %s")
        params.append(since)
    if until:
        clauses.append("committed_at < %s")
        params.append(until)
    for column, text in (("sender", sender), ("subject", subject)):
        if text:
            clauses.append(f"{column} ILIKE %s ESCAPE '\\'")
            params.append("%" + like_literal(text) + "%")
    return clauses, params


def list_verdicts(conn: psycopg.Connection, tenant_id: str, *, limit: int = 50,
                  verdict: str | None = None, before: datetime | None = None) -> list[dict]:
    """Newest first. The caller's transaction must already be scoped to ``tenant_id``."""
    set_tenant(conn, tenant_id)
    clauses, params = verdict_filters(tenant_id, verdict=verdict, until=before)
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
