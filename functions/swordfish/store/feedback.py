"""Analyst feedback on verdicts: stored append-only, fed into the tenant's allow and block lists, and
exported as labelled examples for the next `make fit`."""

from __future__ import annotations

import hashlib
from datetime import datetime

import psycopg
import psycopg.rows
from psycopg.types.json import Jsonb

from swordfish.store.database import set_tenant

LABELS = ("phishing", "legitimate")

# Tenant lists keyed from feedback are sender addresses, never whole domains: one analyst's click must
# not allow or block all of gmail.com.
_TENANT_LISTS = frozenset({"ALLOWLISTED", "BLOCKLISTED", "ALLOWLIST_IGNORED"})


class VerdictNotFound(LookupError):
    def __init__(self, tenant_id: str, message_id: str):
        super().__init__(f"no verdict for message {message_id!r} of tenant {tenant_id!r}")


def record_feedback(conn: psycopg.Connection, tenant_id: str, message_id: str, label: str, analyst: str,
                    comment: str = "", *, api_key_id: str | None = None, stated_analyst: str | None = None) -> dict:
    """Store one analyst judgement of a stored verdict (inside the caller's transaction). ``analyst``
    is who authenticated (the console user, or ``api-key:<id>`` with ``api_key_id``); a name an API
    caller wrote goes to ``stated_analyst``, never to ``analyst``."""
    if label not in LABELS:
        raise ValueError(f"label must be one of {', '.join(LABELS)}")
    set_tenant(conn, tenant_id)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("SELECT verdict, score, reasons, sender FROM verdicts WHERE tenant_id = %s AND message_id = %s",
                    (tenant_id, message_id))
        verdict = cur.fetchone()
        if verdict is None:
            raise VerdictNotFound(tenant_id, message_id)
        signals = {r["name"]: float(r.get("value", 1.0)) for r in verdict["reasons"] or []
                   if isinstance(r, dict) and r.get("name") and r["name"] not in _TENANT_LISTS}
        sender = (verdict["sender"] or "").strip().lower()
        entry = sender if "@" in sender else None
        cur.execute(
            "INSERT INTO verdict_feedback (tenant_id, message_id, label, analyst, comment, verdict, score, signals, "
            "list_entry, api_key_id, stated_analyst) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
            (tenant_id, message_id, label, analyst, comment, verdict["verdict"], verdict["score"], Jsonb(signals),
             entry, api_key_id, stated_analyst))
        return cur.fetchone()


def list_feedback(conn: psycopg.Connection, tenant_id: str, *, limit: int = 100,
                  after_id: int = 0) -> list[dict]:
    """Oldest first from `after_id` (a cursor that survives new rows)."""
    set_tenant(conn, tenant_id)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("SELECT * FROM verdict_feedback WHERE tenant_id = %s AND feedback_id > %s "
                    "ORDER BY feedback_id LIMIT %s", (tenant_id, after_id, limit))
        return cur.fetchall()


def feedback_lists(conn: psycopg.Connection, tenant_id: str) -> tuple[list[str], list[str]]:
    """(allow, block) sender addresses from the latest feedback on each sender."""
    set_tenant(conn, tenant_id)
    rows = conn.execute(
        "SELECT DISTINCT ON (list_entry) list_entry, label FROM verdict_feedback "
        "WHERE tenant_id = %s AND list_entry IS NOT NULL ORDER BY list_entry, feedback_id DESC",
        (tenant_id,)).fetchall()
    allow = sorted(entry for entry, label in rows if label == "legitimate")
    block = sorted(entry for entry, label in rows if label == "phishing")
    return allow, block


def merge_into_policy(policy: dict, allow: list[str], block: list[str]) -> dict:
    """The policy document with feedback-derived entries added; an address the analyst judged most
    recently wins over the same address on the other list of the stored policy."""
    merged = dict(policy)
    block_set, allow_set = set(block), set(allow)
    merged["allow_list"] = [e for e in policy.get("allow_list", []) if str(e).lower() not in block_set] + \
        [e for e in allow if e not in policy.get("allow_list", [])]
    merged["block_list"] = [e for e in policy.get("block_list", []) if str(e).lower() not in allow_set] + \
        [e for e in block if e not in policy.get("block_list", [])]
    return merged


def export_examples(conn: psycopg.Connection, tenant_id: str) -> list[dict]:
    """The latest judgement per message as rows in the format of corpus/features.jsonl.gz, ready to be
    appended to the training data of the next fit (`scripts/fit_weights.py --extra`)."""
    set_tenant(conn, tenant_id)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("SELECT DISTINCT ON (message_id) message_id, label, signals, created_at FROM verdict_feedback "
                    "WHERE tenant_id = %s ORDER BY message_id, feedback_id DESC", (tenant_id,))
        rows = cur.fetchall()
    return [{"id": hashlib.sha256(f"{tenant_id}/{r['message_id']}".encode()).hexdigest()[:16],
             "set": f"feedback-{tenant_id}", "label": "phishing" if r["label"] == "phishing" else "legit",
             "signals": dict(sorted(r["signals"].items())), "judged_at": _iso(r["created_at"])}
            for r in sorted(rows, key=lambda r: r["message_id"])]


def _iso(value: datetime) -> str:
    return value.isoformat()
