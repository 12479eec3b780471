"""Bulk response jobs (issue 28): quarantine, release or delete a campaign's or a search's messages
in every affected mailbox, one stored item per message, worked off by ``pipeline.response``.

A job is created with its items in one transaction (what it acts on is frozen then: a campaign's
copies, a search's results with its filters kept in ``source_ref``, or chosen quarantined
messages). Workers take pending items under a lease (``claim``: ``FOR UPDATE SKIP LOCKED``, so two
workers never hold one item) and write each outcome (done, gone, failed with why, skipped with why)
with its audit row in one transaction; a worker that dies leaves its items to the next one once the
lease ends. Times that decide what is due (lease, throttle, breaker waits) come from the worker's
clock, never the database's, so tests move them.

Row-level security: the caller's scope (``traces.set_scope``: every tenant for MSP staff, else the
caller's tenants) bounds what a job may hold and who sees it; a cross-tenant job (tenant_id NULL)
is visible only in the MSP-wide scope.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
import psycopg.rows
from psycopg.types.json import Jsonb

from swordfish.monitoring.observability import logger
from swordfish.store.audit import record as record_audit
from swordfish.store.database import like_literal
from swordfish.store.storable import storable_json, storable_text
from swordfish.store.traces import ALL_TENANTS, set_scope

ACTIONS = ("quarantine", "release", "delete")
SOURCES = ("campaign", "search", "quarantine")
OUTCOMES = ("done", "gone", "failed", "skipped")
MAX_JOB_ITEMS = 10_000  # one job; a wider response is several jobs (or a narrower search)


class JobRefused(ValueError):
    """The job cannot be created as asked (a 400 with this text)."""


# --- the throttle: one token bucket per tenant and provider ----------------------------------------


@dataclass(frozen=True)
class Bucket:
    rate_per_second: float
    burst: float

    def take(self, tokens: float, updated_at: datetime, now: datetime) -> tuple[float, float]:
        """(tokens left after taking one, 0) when one is there; else (tokens now, seconds until one is)."""
        elapsed = max(0.0, (now - updated_at).total_seconds())
        level = min(self.burst, tokens + elapsed * self.rate_per_second)
        if level >= 1.0:
            return level - 1.0, 0.0
        return level, math.ceil((1.0 - level) / self.rate_per_second * 1000) / 1000


def take_token(conn: psycopg.Connection, bucket: Bucket, tenant_id: str, provider: str, now: datetime) -> float:
    """Take one token of (tenant, provider)'s bucket; returns 0, or the seconds to wait (none taken).
    The row lock makes workers take turns; in the caller's transaction."""
    set_scope(conn, ALL_TENANTS)
    conn.execute("INSERT INTO response_throttle (tenant_id, provider, tokens, updated_at) VALUES (%s, %s, %s, %s) "
                 "ON CONFLICT DO NOTHING", (tenant_id, provider, bucket.burst, now))
    tokens, updated_at = conn.execute("SELECT tokens, updated_at FROM response_throttle WHERE tenant_id = %s "
                                      "AND provider = %s FOR UPDATE", (tenant_id, provider)).fetchone()
    left, wait = bucket.take(tokens, updated_at, now)
    conn.execute("UPDATE response_throttle SET tokens = %s, updated_at = %s WHERE tenant_id = %s AND provider = %s",
                 (left, max(now, updated_at), tenant_id, provider))
    return wait


# --- where a message is ----------------------------------------------------------------------------


def record_mailbox(cur: psycopg.Cursor, tenant_id: str, message_id: str, mailbox: tuple[str, str, str]) -> None:
    """The verdict's mailbox reference (connection, provider config key, provider id), in its transaction."""
    connection_id, provider_config_key, provider_message_id = mailbox
    cur.execute("INSERT INTO mailbox_messages (tenant_id, message_id, connection_id, provider_config_key, "
                "provider_message_id) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (tenant_id, message_id, connection_id[:256], provider_config_key[:256], provider_message_id[:1024]))


def locate(conn: psycopg.Connection, tenant_id: str, message_id: str) -> tuple[dict | None, dict | None]:
    """(the mailbox reference, the quarantine ledger row): either may be None."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        where = "WHERE tenant_id = %s AND message_id = %s"
        mailbox = cur.execute(f"SELECT * FROM mailbox_messages {where}", (tenant_id, message_id)).fetchone()
        ledger = cur.execute(f"SELECT * FROM mailbox_quarantines {where}", (tenant_id, message_id)).fetchone()
    return mailbox, ledger


# --- creating a job --------------------------------------------------------------------------------


def create_job(conn: psycopg.Connection, *, scope: list[str] | None, tenant_id: str | None, action: str,
               source: str, source_ref: dict, items: list[dict], created_by: str, created_role: str,
               note: str = "", source_ip: str | None = None) -> dict:
    """Store a job and its items (each ``{tenant_id, message_id, mailbox}``) in the caller's
    transaction, with the audit row of who started it. ``tenant_id`` None: a cross-tenant job,
    which needs the MSP-wide ``scope`` (None); a tenant job holds only that tenant's items."""
    if action not in ACTIONS:
        raise JobRefused(f"action must be one of {', '.join(ACTIONS)}")
    if source not in SOURCES:
        raise JobRefused(f"source must be one of {', '.join(SOURCES)}")
    if tenant_id is None and scope is not None:
        raise JobRefused("a job across tenants is for MSP staff")
    if tenant_id is not None and scope is not None and tenant_id not in scope:
        raise JobRefused("not your tenant")
    unique: dict[tuple[str, str], dict] = {}
    for item in items:
        if tenant_id is not None and item["tenant_id"] != tenant_id:
            continue
        if scope is not None and item["tenant_id"] not in scope:
            continue
        unique.setdefault((item["tenant_id"], item["message_id"]), item)
    if not unique:
        raise JobRefused("nothing to act on: no message matches")
    if len(unique) > MAX_JOB_ITEMS:
        raise JobRefused(f"{len(unique):,} messages: a job takes at most {MAX_JOB_ITEMS:,}; narrow it down")
    set_scope(conn, scope)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        job = cur.execute(
            "INSERT INTO response_jobs (tenant_id, action, source, source_ref, note, created_by, created_role, total) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
            (tenant_id, action, source, Jsonb(storable_json(source_ref)), storable_text(note, 2000) or "",
             storable_text(created_by, 254) or "unknown", created_role[:64], len(unique))).fetchone()
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO response_job_items (job_id, tenant_id, message_id, mailbox) VALUES (%s, %s, %s, %s)",
            [(job["job_id"], t, m, storable_text(", ".join(item.get("mailbox") or []), 1000) or "")
             for (t, m), item in sorted(unique.items())])
    record_audit(conn, actor=created_by, actor_role=created_role, action="response_job.start", tenant_id=tenant_id,
                 object_type="response_job", object_id=str(job["job_id"]), source_ip=source_ip,
                 after={"action": action, "source": source, "source_ref": source_ref, "messages": len(unique),
                        "tenants": sorted({t for t, _ in unique}), "note": note})
    return job


def campaign_items(conn: psycopg.Connection, campaign_id: int) -> tuple[dict, list[dict]]:
    """A campaign's copies as job items (MSP-wide scope); raises JobRefused when there is no such campaign."""
    from swordfish.store.campaigns import get_campaign, members

    campaign = get_campaign(conn, campaign_id)
    if campaign is None:
        raise JobRefused(f"no campaign {campaign_id}")
    return campaign, [{"tenant_id": c["tenant_id"], "message_id": c["message_id"],
                       "mailbox": c["envelope_recipients"] or c["header_recipients"] or []}
                      for c in members(conn, campaign)]


def search_items(conn: psycopg.Connection, query: Any, scope: list[str] | None) -> list[dict]:
    """A search's results (every page, up to one past the cap so the cap can refuse) as job items."""
    from swordfish.store.traces import MAX_PAGE, search

    rows, cursor = search(conn, query, scope, limit=MAX_PAGE)
    while cursor and len(rows) <= MAX_JOB_ITEMS:
        more, cursor = search(conn, query, scope, limit=MAX_PAGE, cursor=cursor)
        rows += more
    return [{"tenant_id": r["tenant_id"], "message_id": r["message_id"],
             "mailbox": r["envelope_recipients"] or r["header_recipients"] or []} for r in rows]


def quarantine_items(conn: psycopg.Connection, keys: list[tuple[str, str]], scope: list[str] | None) -> list[dict]:
    """Chosen messages of the quarantine list, as job items (only those still quarantined)."""
    set_scope(conn, scope)
    if not keys:
        return []
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(
            "SELECT q.tenant_id, q.message_id, t.envelope_recipients, t.header_recipients FROM mailbox_quarantines q "
            "JOIN unnest(%s::text[], %s::text[]) AS k(tenant_id, message_id) USING (tenant_id, message_id) "
            "LEFT JOIN verdict_traces t ON t.tenant_id = q.tenant_id AND t.message_id = q.message_id "
            "WHERE q.state = 'quarantined'", ([k[0] for k in keys], [k[1] for k in keys])).fetchall()
    return [{"tenant_id": r["tenant_id"], "message_id": r["message_id"],
             "mailbox": r["envelope_recipients"] or r["header_recipients"] or []} for r in rows]


# --- reading jobs ----------------------------------------------------------------------------------


def get_job(conn: psycopg.Connection, job_id: int, scope: list[str] | None) -> dict | None:
    set_scope(conn, scope)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute("SELECT * FROM response_jobs WHERE job_id = %s", (job_id,)).fetchone()


def progress(conn: psycopg.Connection, job_id: int, scope: list[str] | None) -> dict | None:
    """The job, its counts by outcome, and done/total per tenant (done: any outcome but pending)."""
    job = get_job(conn, job_id, scope)
    if job is None:
        return None
    tenants: dict[str, dict] = {}
    counts = dict.fromkeys(("pending", *OUTCOMES), 0)
    for tenant_id, state, n in conn.execute(
            "SELECT tenant_id, state, count(*) FROM response_job_items WHERE job_id = %s GROUP BY 1, 2 ORDER BY 1",
            (job_id,)):
        row = tenants.setdefault(tenant_id, {"tenant_id": tenant_id, "total": 0, "finished": 0,
                                             **dict.fromkeys(("pending", *OUTCOMES), 0)})
        row[state] += n
        row["total"] += n
        row["finished"] += 0 if state == "pending" else n
        counts[state] += n
    total = sum(counts.values())
    return {**job, "counts": counts, "finished": total - counts["pending"], "total": total,
            "tenants": list(tenants.values())}


def job_items(conn: psycopg.Connection, job_id: int, scope: list[str] | None, *, limit: int = 100,
              after: int = 0, state: str | None = None) -> list[dict]:
    set_scope(conn, scope)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            "SELECT item_id, tenant_id, message_id, mailbox, provider, state, why, attempts, not_before, finished_at "
            "FROM response_job_items WHERE job_id = %s AND item_id > %s AND (%s::text IS NULL OR state = %s) "
            "ORDER BY item_id LIMIT %s", (job_id, after, state, state, limit)).fetchall()


def list_jobs(conn: psycopg.Connection, scope: list[str] | None, *, limit: int = 50,
              before: int | None = None) -> list[dict]:
    """Newest first (keyset on job_id), with done/total of each."""
    set_scope(conn, scope)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            "SELECT j.*, (SELECT count(*) FROM response_job_items i WHERE i.job_id = j.job_id "
            "AND i.state <> 'pending') AS finished FROM response_jobs j "
            "WHERE (%s::bigint IS NULL OR j.job_id < %s) ORDER BY j.job_id DESC LIMIT %s",
            (before, before, limit)).fetchall()


# --- the worker's side -----------------------------------------------------------------------------


def claim(conn: psycopg.Connection, now: datetime, *, lease: timedelta, limit: int,
          job_id: int | None = None) -> list[dict]:
    """Take up to ``limit`` due items (oldest first) for ``lease``: pending, not waiting, and not
    held by a live lease. Another worker skips them (SKIP LOCKED, then the lease)."""
    set_scope(conn, ALL_TENANTS)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            "UPDATE response_job_items i SET lease_until = %s, attempts = i.attempts + 1 FROM response_jobs j "
            "WHERE j.job_id = i.job_id AND i.item_id IN (SELECT item_id FROM response_job_items "
            "WHERE state = 'pending' AND not_before <= %s AND (lease_until IS NULL OR lease_until <= %s) "
            "AND (%s::bigint IS NULL OR job_id = %s) ORDER BY item_id LIMIT %s FOR UPDATE SKIP LOCKED) "
            "RETURNING i.*, j.action, j.created_by, j.created_role",
            (now + lease, now, now, job_id, job_id, limit)).fetchall()


def postpone(conn: psycopg.Connection, item: dict, until: datetime, why: str, *, provider: str = "",
             count_attempt: bool = True) -> None:
    """Back to waiting until ``until`` (throttled, breaker open, provider failing): not an outcome."""
    set_scope(conn, ALL_TENANTS)
    conn.execute("UPDATE response_job_items SET not_before = %s, lease_until = NULL, why = %s, provider = %s, "
                 "attempts = attempts - %s WHERE item_id = %s AND state = 'pending'",
                 (until, storable_text(why, 2000) or "", provider[:256], 0 if count_attempt else 1, item["item_id"]))


def finish(conn: psycopg.Connection, item: dict, outcome: str, why: str, now: datetime, *, provider: str = "") -> bool:
    """Write the item's outcome and its audit row (the caller's transaction); False when another
    worker finished it first (its lease had ended): then nothing is written twice."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}")
    set_scope(conn, ALL_TENANTS)
    row = conn.execute("UPDATE response_job_items SET state = %s, why = %s, finished_at = %s, lease_until = NULL, "
                       "provider = %s WHERE item_id = %s AND state = 'pending' RETURNING item_id",
                       (outcome, storable_text(why, 2000) or "", now, provider[:256], item["item_id"])).fetchone()
    if row is None:
        return False
    record_audit(conn, actor=f"response-job:{item['job_id']}", actor_role="worker",
                 action=f"response.{item['action']}", tenant_id=item["tenant_id"], object_type="verdict",
                 object_id=storable_text(item["message_id"], 512), outcome="failed" if outcome == "failed" else "ok",
                 after={"outcome": outcome, "job_id": item["job_id"], "started_by": item["created_by"],
                        "mailbox": item["mailbox"], "provider": provider, "why": why})
    left = conn.execute("SELECT count(*) FROM response_job_items WHERE job_id = %s AND state = 'pending'",
                        (item["job_id"],)).fetchone()[0]
    if left == 0:
        conn.execute("UPDATE response_jobs SET finished_at = %s WHERE job_id = %s AND finished_at IS NULL",
                     (now, item["job_id"]))
    return True


def next_due(conn: psycopg.Connection, job_id: int | None = None) -> datetime | None:
    """When the earliest pending item falls due (None: nothing pending)."""
    set_scope(conn, ALL_TENANTS)
    return conn.execute("SELECT min(greatest(not_before, coalesce(lease_until, 'epoch'))) "
                        "FROM response_job_items WHERE state = 'pending' AND (%s::bigint IS NULL OR job_id = %s)",
                        (job_id, job_id)).fetchone()[0]


# --- the quarantine list ---------------------------------------------------------------------------


def quarantine_list(conn: psycopg.Connection, scope: list[str] | None, *, limit: int = 50,
                    cursor: tuple[datetime, str, str] | None = None, tenant: str | None = None,
                    state: str | None = "quarantined", recipient: str | None = None, sender: str | None = None,
                    since: datetime | None = None, until: datetime | None = None) -> list[dict]:
    """Quarantined messages newest first, keyset-paged on (quarantined_at, tenant, message id),
    with what the trace knows of each (subject, sender, recipients, verdict)."""
    set_scope(conn, scope)
    where, params = [], []
    if tenant:
        where.append("q.tenant_id = %s")
        params.append(tenant)
    if state:
        where.append("q.state = %s")
        params.append(state)
    if recipient:
        where.append("(%s = ANY(t.envelope_recipients) OR %s = ANY(t.header_recipients))")
        params += [recipient.lower(), recipient.lower()]
    if sender:
        where.append("(t.sender_domain = %s OR t.sender ILIKE %s)")
        params += [sender.lower(), "%" + like_literal(sender) + "%"]
    if since:
        where.append("q.quarantined_at >= %s")
        params.append(since)
    if until:
        where.append("q.quarantined_at < %s")
        params.append(until)
    if cursor:
        where.append("(q.quarantined_at, q.tenant_id, q.message_id) < (%s, %s, %s)")
        params += list(cursor)
    sql = ("SELECT q.tenant_id, q.message_id, q.state, q.quarantined_at, q.released_at, q.released_by, "
           "t.subject, t.sender, t.verdict, t.score, t.envelope_recipients, t.header_recipients "
           "FROM mailbox_quarantines q LEFT JOIN verdict_traces t ON t.tenant_id = q.tenant_id "
           "AND t.message_id = q.message_id" + (f" WHERE {' AND '.join(where)}" if where else "")
           + " ORDER BY q.quarantined_at DESC, q.tenant_id DESC, q.message_id DESC LIMIT %s")
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(sql, [*params, limit]).fetchall()


def encode_cursor(row: dict) -> str:
    import base64
    import json

    raw = json.dumps([row["quarantined_at"].isoformat(), row["tenant_id"], row["message_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[datetime, str, str]:
    """Raises JobRefused (a 400) for anything but a cursor this module wrote."""
    import base64
    import binascii
    import json

    try:
        at, tenant, message = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return datetime.fromisoformat(at), str(tenant), str(message)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise JobRefused("cursor is not one this list gave") from exc


# --- one facade for the API and the console ---------------------------------------------------------


class ResponseDesk:
    """Starting and reading jobs, the quarantine list and indicator blocks, each in one transaction;
    ``kick`` puts a stored job on its queue (None: a worker polls, as the tests run it)."""

    def __init__(self, database, kick=None):
        self.database, self.kick = database, kick

    def start(self, *, scope: list[str] | None, tenant_id: str | None, action: str, created_by: str,
              created_role: str, campaign_id: int | None = None, query: Any = None,
              quarantined: list[tuple[str, str]] | None = None, confirm_delete: bool = False, note: str = "",
              source_ip: str | None = None) -> dict:
        """A job from exactly one of a campaign, a search (its filters frozen into the job) or
        chosen quarantined messages. Deleting needs ``confirm_delete``. Raises JobRefused."""
        if action == "delete" and not confirm_delete:
            raise JobRefused("deleting needs the explicit confirmation (confirm_delete: true)")
        given = [x is not None for x in (campaign_id, query, quarantined)]
        if sum(given) != 1:
            raise JobRefused("start a job from one campaign, one search, or chosen quarantined messages")
        with self.database.connection() as conn, conn.transaction():
            if campaign_id is not None:
                if scope is not None:
                    raise JobRefused("campaigns span tenants: acting on one is for MSP staff")
                campaign, items = campaign_items(conn, campaign_id)
                source, ref = "campaign", {"campaign_id": campaign_id, "kind": campaign["kind"],
                                           "indicator": campaign["indicator"]}
            elif query is not None:
                if query.is_empty():
                    raise JobRefused("a search with no filter would act on every message: add a filter")
                items = search_items(conn, query, scope if tenant_id is None else [tenant_id])
                source, ref = "search", {"filters": query.model_dump(mode="json", exclude_none=True)}
            else:
                if action != "release":
                    raise JobRefused("the quarantine list releases; quarantine or delete from a search or a campaign")
                items = quarantine_items(conn, quarantined or [], scope)
                source, ref = "quarantine", {"messages": len(quarantined or [])}
            job = create_job(conn, scope=scope, tenant_id=tenant_id, action=action, source=source, source_ref=ref,
                             items=items, created_by=created_by, created_role=created_role, note=note,
                             source_ip=source_ip)
        job["queued"] = self.kick is None  # no queue: a worker polls for due items
        if self.kick is not None:
            try:
                self.kick(job["job_id"])
                job["queued"] = True
            except Exception as exc:  # noqa: BLE001 - the job is stored: `swordfish response run` finishes it
                logger.warning("a response job was stored but could not be queued",
                               extra={"job_id": job["job_id"], "error": repr(exc)[:300]})
        return job

    def progress(self, job_id: int, scope: list[str] | None) -> dict | None:
        with self.database.connection() as conn, conn.transaction():
            return progress(conn, job_id, scope)

    def items(self, job_id: int, scope: list[str] | None, *, limit: int, after: int) -> list[dict]:
        with self.database.connection() as conn, conn.transaction():
            return job_items(conn, job_id, scope, limit=limit, after=after)

    def jobs(self, scope: list[str] | None, *, limit: int, before: int | None) -> list[dict]:
        with self.database.connection() as conn, conn.transaction():
            return list_jobs(conn, scope, limit=limit, before=before)

    def quarantine(self, scope: list[str] | None, *, limit: int, cursor: str | None = None,
                   **filters: Any) -> tuple[list[dict], str | None]:
        position = decode_cursor(cursor) if cursor else None
        with self.database.connection() as conn, conn.transaction():
            rows = quarantine_list(conn, scope, limit=limit, cursor=position, **filters)
        return rows, encode_cursor(rows[-1]) if len(rows) == limit else None

    def block(self, *, scope: list[str] | None, tenant_id: str | None, kind: str, indicator: str, created_by: str,
              created_role: str, campaign_id: int | None = None, comment: str = "",
              source_ip: str | None = None) -> dict:
        """Raises ValueError (a 400) for an indicator that cannot be blocked or a scope not the caller's."""
        from swordfish.store.indicator_blocks import add_block

        if tenant_id is None and scope is not None:
            raise ValueError("an MSP-wide block is for MSP staff")
        if tenant_id is not None and scope is not None and tenant_id not in scope:
            raise ValueError("not your tenant")
        with self.database.connection() as conn, conn.transaction():
            row = add_block(conn, tenant_id=tenant_id, kind=kind, indicator=indicator, created_by=created_by,
                            campaign_id=campaign_id, comment=comment)
            record_audit(conn, actor=created_by, actor_role=created_role, action="indicator_block.add",
                         tenant_id=tenant_id, object_type="indicator_block", object_id=str(row["block_id"]),
                         source_ip=source_ip, after={"kind": row["kind"], "indicator": row["indicator"],
                                                     "scope": tenant_id or "every tenant", "campaign_id": campaign_id})
        return row

    def unblock(self, block_id: int, *, scope: list[str] | None, removed_by: str, role: str,
                source_ip: str | None = None) -> dict | None:
        from swordfish.store.indicator_blocks import remove_block

        with self.database.connection() as conn, conn.transaction():
            row = remove_block(conn, block_id, removed_by, scope)
            if row is not None:
                record_audit(conn, actor=removed_by, actor_role=role, action="indicator_block.remove",
                             tenant_id=row["tenant_id"], object_type="indicator_block", object_id=str(block_id),
                             source_ip=source_ip, before={"kind": row["kind"], "indicator": row["indicator"],
                                                          "by": row["created_by"]})
        return row

    def blocks(self, scope: list[str] | None) -> list[dict]:
        from swordfish.store.indicator_blocks import active_blocks

        with self.database.connection() as conn, conn.transaction():
            return active_blocks(conn, scope)

    def campaign_indicators(self, campaign_id: int) -> list[tuple[str, str]] | None:
        from swordfish.store.campaigns import get_campaign
        from swordfish.store.indicator_blocks import campaign_indicators

        with self.database.connection() as conn, conn.transaction():
            campaign = get_campaign(conn, campaign_id)
            return None if campaign is None else campaign_indicators(conn, campaign)
