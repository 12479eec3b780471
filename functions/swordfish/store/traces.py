"""Trace rows (one per verdict, migration 0070) and the search over them, across tenants.

Writes happen inside the verdict's own transaction (``verdicts.save_verdicts``) under that tenant's
row-level security. Reads run in a *scoped* transaction: ``app.tenant_scope`` matches every tenant for MSP staff
(every tenant) or the caller's tenants, and the policy on both tables enforces it whatever the
query says. Everything is one statement per round trip, no session state, no prepared statements:
fit for RDS Proxy (and PgBouncer in transaction pooling).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import psycopg
import psycopg.rows
from pydantic import BaseModel, ConfigDict, Field, field_validator

from swordfish import constants
from swordfish.analysis.trace import (
    ATTACHMENT_NAME,
    ATTACHMENT_SHA256,
    LINK_DOMAIN,
    RECIPIENT,
    URL,
    TraceFields,
    term_key,
)
from swordfish.store.storable import storable_text

TRACE_RETENTION = timedelta(days=constants.BACKUP_OBJECT_EXPIRY_DAYS)
MAX_PAGE = 500
ALL_TENANTS = None  # a scope: MSP staff see every tenant
MSP_SCOPE = "^"  # app.tenant_scope matching every tenant id
TENANT = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def set_scope(conn: psycopg.Connection, tenants: list[str] | None) -> None:
    """Scope the current transaction's reads to ``tenants`` (None: every tenant), reset at its end.

    The setting is a regular expression the policy matches tenant ids against (migration 0070 says
    why): '^' for every tenant, '^(a|b)$' for a list. Tenant ids hold only [a-z0-9-], so they stand
    for themselves; anything else is dropped here."""
    if tenants is None:
        pattern = MSP_SCOPE
    else:
        valid = [t for t in tenants if TENANT.match(t)]
        pattern = "^(" + "|".join(valid) + ")$" if valid else "^$"
    conn.execute("SELECT set_config('app.tenant_scope', %s, true)", (pattern,))


# --- writing ------------------------------------------------------------------------------------

_INSERT = """
INSERT INTO verdict_traces (tenant_id, message_id, committed_at, expires_at, verdict, score, reasons, subject,
                            sender, sender_domain, reply_to_domain, header_message_id, sending_ip, helo,
                            envelope_recipients, header_recipients, link_domains, urls, attachment_names,
                            attachment_sha256, content_digest)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::inet, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (tenant_id, message_id) DO NOTHING
RETURNING trace_id
"""

_TERMS = """
INSERT INTO verdict_trace_terms (term, committed_at, trace_id, tenant_id)
SELECT term, %s, %s, %s FROM unnest(%s::bigint[]) AS term
"""


def _texts(values: list[str], limit: int) -> list[str]:
    return [storable_text(v, limit) for v in values if v]


def _inet(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


def insert_trace(cur: psycopg.Cursor, tenant_id: str, message_id: str, committed_at: datetime, *, verdict: str,
                 score: float, reasons: list, subject: str | None, sender: str | None,
                 trace: TraceFields) -> int | None:
    """One verdict's trace and its terms, in the caller's transaction (scoped to ``tenant_id``).
    Idempotent: a verdict that has a trace keeps it (returns None)."""
    names = sorted({str(r.get("name"))[:64] for r in reasons if isinstance(r, dict) and r.get("name")})[:64]
    cur.execute(_INSERT, (
        tenant_id, message_id, committed_at, committed_at + TRACE_RETENTION, verdict, score, names,
        storable_text(subject, 998), storable_text(sender, 998), storable_text(trace.sender_domain, 255),
        storable_text(trace.reply_to_domain, 255), storable_text(trace.header_message_id, 300),
        _inet(trace.sending_ip), storable_text(trace.helo, 255), _texts(trace.envelope_recipients, 254),
        _texts(trace.header_recipients, 254), _texts(trace.link_domains, 255), _texts(trace.urls, 2048),
        _texts(trace.attachment_names, 255), _texts(trace.attachment_sha256, 64),
        storable_text(trace.content_digest, 64)))
    row = cur.fetchone()
    if row is None:
        return None
    terms = sorted(trace.terms())
    if terms:
        cur.execute(_TERMS, (committed_at, row[0], tenant_id, terms))
    return row[0]


def purge_expired(conn: psycopg.Connection, now: datetime, *, batch: int = 10_000) -> int:
    """Delete traces past the raw archive's retention (their terms go with them). Every tenant."""
    set_scope(conn, ALL_TENANTS)
    # DELETE under the tenant policy needs the row visible; the scope makes every row visible.
    cur = conn.execute("DELETE FROM verdict_traces WHERE trace_id IN (SELECT trace_id FROM verdict_traces "
                       "WHERE expires_at < %s LIMIT %s)", (now, batch))
    return cur.rowcount


def purge_all_expired(connect: Callable[[], AbstractContextManager[psycopg.Connection]], now: datetime, *,
                      batch: int = 10_000, time_left: Callable[[], float] | None = None,
                      reserve_seconds: float = 30.0) -> dict:
    """``purge_expired`` a batch per transaction until none is left, or until ``time_left()`` falls
    under ``reserve_seconds`` (a Lambda's budget: the next scheduled run goes on from there).
    Shared by ``swordfish trace purge`` and the scheduled function (``handlers/trace_purge.py``)."""
    deleted = batches = 0
    while True:
        with connect() as conn, conn.transaction():
            count = purge_expired(conn, now, batch=batch)
        deleted, batches = deleted + count, batches + 1
        if count < batch:
            return {"deleted": deleted, "batches": batches, "complete": True}
        if time_left is not None and time_left() < reserve_seconds:
            return {"deleted": deleted, "batches": batches, "complete": False}


# --- searching ----------------------------------------------------------------------------------

Text = Annotated[str, Field(min_length=1, max_length=300, pattern=r"^[^\x00-\x1f\x7f]+$")]


class InvalidSearch(ValueError):
    """A filter or cursor that cannot mean anything: the caller gets a 400 with this text."""


class TraceSearch(BaseModel):
    """The filters of a search (every field optional; all given must hold). Shared by the API and
    the console, so both refuse the same input the same way."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    tenant: str | None = Field(default=None, pattern=TENANT.pattern, description="only this tenant")
    recipient: Text | None = Field(default=None, description="envelope or header recipient address")
    message_id: Text | None = Field(default=None, description="the header Message-ID, as written (<...>)")
    sending_ip: Text | None = Field(default=None, description="the IP of the trusted Received hop")
    helo: Text | None = Field(default=None, description="the HELO name of the trusted Received hop")
    link_domain: Text | None = Field(default=None, description="a registered domain linked from the message")
    url: Text | None = Field(default=None, max_length=2048, description="a link's URL, normalised as stored")
    attachment_name: Text | None = Field(default=None, description="an attachment's file name (any case)")
    attachment_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    sender_domain: Text | None = None
    reply_to_domain: Text | None = None
    verdict: list[str] | None = Field(default=None, description="any of these verdicts")
    min_score: float | None = Field(default=None, ge=-1000, le=1000)
    max_score: float | None = Field(default=None, ge=-1000, le=1000)
    reason: str | None = Field(default=None, pattern=r"^[A-Z0-9_]{2,64}$", description="a reason (signal) name")
    since: datetime | None = None
    until: datetime | None = None

    @field_validator("verdict")
    @classmethod
    def _verdicts(cls, value: list[str] | None) -> list[str] | None:
        if not value:
            return None
        bad = [v for v in value if v not in constants.VERDICTS]
        if bad:
            raise ValueError(f"verdict must be among {', '.join(constants.VERDICTS)}")
        return sorted(set(value))

    @field_validator("sending_ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError as exc:
            raise ValueError("sending_ip must be an IPv4 or IPv6 address") from exc

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)

    @field_validator("recipient", "link_domain", "sender_domain", "reply_to_domain", "helo", "attachment_sha256")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.lower() if value else value

    def is_empty(self) -> bool:
        return not any(v is not None for v in self.model_dump().values())


def encode_cursor(committed_at: datetime, trace_id: int) -> str:
    return base64.urlsafe_b64encode(f"{committed_at.isoformat()}|{trace_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, trace_id = text.split("|")
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, int(trace_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidSearch("cursor is not one this search returned") from exc


RESULT_COLUMNS = ("t.trace_id, t.tenant_id, t.message_id, t.committed_at, t.verdict, t.score, t.reasons, t.subject, "
                  "t.sender, t.sender_domain, t.reply_to_domain, t.header_message_id, host(t.sending_ip) AS sending_ip, "
                  "t.helo, t.envelope_recipients, t.header_recipients, t.link_domains, t.urls, t.attachment_names, "
                  "t.attachment_sha256")


def _term_filters(query: TraceSearch) -> list[tuple[int, str, list]]:
    """(term key, exact check on the trace row, its parameters) for each multi-valued filter."""
    out = []
    if query.recipient:
        out.append((term_key(RECIPIENT, query.recipient),
                    "(%s = ANY(t.envelope_recipients) OR %s = ANY(t.header_recipients))", [query.recipient] * 2))
    if query.link_domain:
        out.append((term_key(LINK_DOMAIN, query.link_domain), "%s = ANY(t.link_domains)", [query.link_domain]))
    if query.url:
        from swordfish.analysis.urls import normalize_url

        url = normalize_url(query.url)
        if not url:
            raise InvalidSearch("url must be a URL with a host (http://... or https://...)")
        out.append((term_key(URL, url), "%s = ANY(t.urls)", [url]))
    if query.attachment_name:
        out.append((term_key(ATTACHMENT_NAME, query.attachment_name.casefold()),
                    "lower(%s) = ANY(SELECT lower(n) FROM unnest(t.attachment_names) n)", [query.attachment_name]))
    if query.attachment_sha256:
        out.append((term_key(ATTACHMENT_SHA256, query.attachment_sha256), "%s = ANY(t.attachment_sha256)",
                    [query.attachment_sha256]))
    return out


def search_sql(query: TraceSearch, scope: list[str] | None, *, limit: int,
               cursor: tuple[datetime, int] | None) -> tuple[str, list[Any]]:
    """The one statement of a search page, newest first, keyset-paged on (committed_at, trace_id)."""
    if query.since and query.until and query.since >= query.until:
        raise InvalidSearch("since must be before until")
    if query.min_score is not None and query.max_score is not None and query.min_score > query.max_score:
        raise InvalidSearch("min_score must not exceed max_score")
    terms = _term_filters(query)
    where: list[str] = []
    params: list[Any] = []
    if terms:  # driven by the first term's index, in its order
        first_term = terms[0][0]
        source = "verdict_trace_terms k JOIN verdict_traces t ON t.trace_id = k.trace_id"
        order_at, order_id = "k.committed_at", "k.trace_id"
        where.append("k.term = %s")
        params.append(first_term)
    else:
        source = "verdict_traces t"
        order_at, order_id = "t.committed_at", "t.trace_id"
    for term, _, _ in terms[1:]:
        where.append("EXISTS (SELECT 1 FROM verdict_trace_terms k2 WHERE k2.term = %s "
                     "AND k2.committed_at = t.committed_at AND k2.trace_id = t.trace_id)")
        params.append(term)
    for _, check, values in terms:
        where.append(check)
        params.extend(values)
    tenants = scope
    if query.tenant:
        if scope is not None and query.tenant not in scope:
            tenants = []  # not theirs: nothing (row-level security would hide it anyway)
        else:
            tenants = [query.tenant]
    # On the trace row even when a term drives the search: on the term, the planner would take a
    # recipient's term and its tenant as independent and expect one row, then sort instead of
    # reading the term's index in order.
    if tenants is not None and len(tenants) == 1:  # equality: the (tenant, time) index gives the order
        where.append("t.tenant_id = %s")
        params.append(tenants[0])
    elif tenants is not None:
        where.append("t.tenant_id = ANY(%s)")
        params.append(list(tenants))
    for column, value in (("t.sender_domain", query.sender_domain), ("t.reply_to_domain", query.reply_to_domain),
                          ("t.header_message_id", query.message_id), ("t.helo", query.helo)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if query.sending_ip:
        where.append("t.sending_ip = %s::inet")
        params.append(query.sending_ip)
    if query.verdict:
        where.append("t.verdict = ANY(%s)")
        params.append(query.verdict)
    if query.min_score is not None:
        where.append("t.score >= %s")
        params.append(query.min_score)
    if query.max_score is not None:
        where.append("t.score <= %s")
        params.append(query.max_score)
    if query.reason:
        where.append("%s = ANY(t.reasons)")
        params.append(query.reason)
    if query.since:
        where.append(f"{order_at} >= %s")
        params.append(query.since)
    if query.until:
        where.append(f"{order_at} < %s")
        params.append(query.until)
    if cursor is not None:
        where.append(f"({order_at}, {order_id}) < (%s, %s)")
        params.extend(cursor)
    sql = (f"SELECT {RESULT_COLUMNS} FROM {source}"
           + (f" WHERE {' AND '.join(where)}" if where else "")
           + f" ORDER BY {order_at} DESC, {order_id} DESC LIMIT %s")
    params.append(limit)
    return sql, params


def search(conn: psycopg.Connection, query: TraceSearch, scope: list[str] | None, *, limit: int = 50,
           cursor: str | None = None, statement_timeout_ms: int = 10_000) -> tuple[list[dict], str | None]:
    """One page of traces (newest first) and the cursor of the next page (None on the last).
    ``scope``: the caller's tenants, None for MSP staff (every tenant)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidSearch(f"limit must be 1 to {MAX_PAGE}")
    sql, params = search_sql(query, scope, limit=limit, cursor=decode_cursor(cursor) if cursor else None)
    set_scope(conn, scope)
    conn.execute("SELECT set_config('statement_timeout', %s, true)", (str(int(statement_timeout_ms)),))
    try:
        with conn.transaction(), conn.cursor(row_factory=psycopg.rows.dict_row) as cur:  # a savepoint
            rows = cur.execute(sql, params).fetchall()
    except psycopg.errors.QueryCanceled as exc:  # the statement timeout: the caller's to narrow, not a 500
        raise InvalidSearch("the search took too long: add a time range or a more specific filter") from exc
    next_cursor = encode_cursor(rows[-1]["committed_at"], rows[-1]["trace_id"]) if len(rows) == limit else None
    return rows, next_cursor


CSV_COLUMNS = ("tenant_id", "message_id", "committed_at", "verdict", "score", "reasons", "subject", "sender",
               "sender_domain", "reply_to_domain", "header_message_id", "sending_ip", "helo", "envelope_recipients",
               "header_recipients", "link_domains", "urls", "attachment_names", "attachment_sha256")
MAX_CSV_ROWS = 10_000


def csv_rows(rows: list[dict]) -> list[list[str]]:
    """Rows for a CSV export: lists joined by spaces, and formula-leading cells defused (a cell an
    analyst opens in a spreadsheet must not run: OWASP's CSV injection)."""
    out = []
    for row in rows:
        cells = []
        for column in CSV_COLUMNS:
            value = row.get(column)
            if isinstance(value, list):
                value = " ".join(str(v) for v in value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            text = "" if value is None else str(value)
            if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
                text = "'" + text
            cells.append(text)
        out.append(cells)
    return out


# --- backfill -----------------------------------------------------------------------------------

def backfill(database, load, *, batch: int = 200, now: datetime | None = None,
             tenants: list[str] | None = None, progress=None) -> dict:
    """Traces for verdicts stored before traces were (or whose trace write was lost), read again
    from the raw archive: ``load(tenant_id, message_id, key, line) -> (envelope recipients, raw MIME)``.

    Resumable and idempotent: it only ever looks at verdicts without a trace, walks each tenant in
    message-id order, commits every ``batch``, and a trace written meanwhile (by the pipeline or a
    second run) is kept (ON CONFLICT DO NOTHING). Verdicts past the archive's retention are skipped:
    their message is gone. One statement per round trip, no session state: fit for RDS Proxy."""
    from swordfish.analysis import AnalysisBudget, parse_message
    from swordfish.analysis.trace import extract_trace
    from swordfish.store.tenants import list_tenants

    now = now or datetime.now(UTC)
    counts = {"traced": 0, "unavailable": 0, "already": 0}
    if tenants is None:
        with database.connection() as conn, conn.transaction():
            tenants = [t["tenant_id"] for t in list_tenants(conn)]
    for tenant_id in tenants:
        after = ""
        while True:
            with database.tenant_transaction(tenant_id) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                rows = cur.execute(
                    "SELECT v.message_id, v.raw_archive_key, v.raw_archive_line, v.verdict, v.score, v.reasons, "
                    "v.subject, v.sender, v.committed_at FROM verdicts v WHERE v.tenant_id = %s "
                    "AND v.message_id > %s AND v.raw_archive_key IS NOT NULL AND v.committed_at >= %s "
                    "AND NOT EXISTS (SELECT 1 FROM verdict_traces t WHERE t.tenant_id = v.tenant_id "
                    "AND t.message_id = v.message_id) ORDER BY v.message_id LIMIT %s",
                    (tenant_id, after, now - TRACE_RETENTION, batch)).fetchall()
            if not rows:
                break
            traced = []
            for row in rows:
                try:
                    envelope, raw = load(tenant_id, row["message_id"], row["raw_archive_key"], row["raw_archive_line"])
                except Exception:  # gone past retention, unreadable, or its mailbox unreachable: next time
                    counts["unavailable"] += 1
                    continue
                traced.append((row, extract_trace(parse_message(raw, budget=AnalysisBudget(5.0)), envelope)))
            with database.tenant_transaction(tenant_id) as conn, conn.cursor() as cur:
                for row, trace in traced:
                    written = insert_trace(cur, tenant_id, row["message_id"], row["committed_at"],
                                           verdict=row["verdict"], score=row["score"], reasons=row["reasons"] or [],
                                           subject=row["subject"], sender=row["sender"], trace=trace)
                    counts["traced" if written else "already"] += 1
            after = rows[-1]["message_id"]
            if progress:
                progress(tenant_id, dict(counts))
    return counts
