"""Blocks on a campaign's indicators (issue 28): link domains, attachment SHA-256s and sender
domains, for one tenant or MSP-wide (tenant_id NULL), undoable (a removal marks the row).

They reach the pipeline the way list entries do: ``blocks_for`` runs when a tenant's policy loads
(``tenants.load_policy``) and puts them in the policy's ``indicator_blocks``; the scorer flags a
message holding one as BLOCKLISTED with the block named in the evidence, and forces at least a
phishing verdict (``analysis.scoring``). Adding and removing are audited by the caller.
"""

from __future__ import annotations

import re

import psycopg
import psycopg.rows

from swordfish.analysis.list_entries import check_entry
from swordfish.store.storable import storable_text
from swordfish.store.traces import ALL_TENANTS, set_scope

KINDS = ("link_domain", "attachment_sha256", "sender_domain")
MAX_BLOCKS = 5000  # per scope: the policy carries them into every batch
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_indicator(kind: str, indicator: str) -> str:
    """The indicator as stored; raises ValueError with why it cannot be blocked."""
    text = str(indicator or "").strip().lower()
    if kind == "attachment_sha256":
        if not _SHA256.match(text):
            raise ValueError("an attachment hash is 64 hexadecimal characters (SHA-256)")
        return text
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    stored, why = check_entry(text)
    if stored is None or "@" in stored:
        raise ValueError(f"{text[:100]}: {why or 'a domain, not an address'}")
    return stored


def add_block(conn: psycopg.Connection, *, tenant_id: str | None, kind: str, indicator: str, created_by: str,
              campaign_id: int | None = None, comment: str = "") -> dict:
    """Store a block (MSP-wide needs the MSP scope); an active block of the same is returned as is."""
    value = check_indicator(kind, indicator)
    set_scope(conn, ALL_TENANTS if tenant_id is None else [tenant_id])
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        existing = cur.execute("SELECT * FROM indicator_blocks WHERE tenant_id IS NOT DISTINCT FROM %s AND kind = %s "
                               "AND indicator = %s AND removed_at IS NULL", (tenant_id, kind, value)).fetchone()
        if existing:
            return existing
        count = cur.execute("SELECT count(*) AS n FROM indicator_blocks WHERE tenant_id IS NOT DISTINCT FROM %s "
                            "AND removed_at IS NULL", (tenant_id,)).fetchone()["n"]
        if count >= MAX_BLOCKS:
            raise ValueError(f"already {count:,} blocks here, the limit")
        return cur.execute(
            "INSERT INTO indicator_blocks (tenant_id, kind, indicator, campaign_id, comment, created_by) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
            (tenant_id, kind, value, campaign_id, storable_text(comment, 2000) or "",
             storable_text(created_by, 254) or "unknown")).fetchone()


def remove_block(conn: psycopg.Connection, block_id: int, removed_by: str, scope: list[str] | None) -> dict | None:
    """Undo a block in ``scope`` (None: MSP staff, who may also undo MSP-wide ones)."""
    set_scope(conn, scope)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            "UPDATE indicator_blocks SET removed_at = clock_timestamp(), removed_by = %s WHERE block_id = %s "
            "AND removed_at IS NULL AND (tenant_id IS NOT NULL OR %s) RETURNING *",
            (storable_text(removed_by, 254), block_id, scope is None)).fetchone()


def active_blocks(conn: psycopg.Connection, scope: list[str] | None) -> list[dict]:
    """The blocks in force that ``scope`` sees (MSP-wide ones always), newest first."""
    set_scope(conn, scope)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute("SELECT * FROM indicator_blocks WHERE removed_at IS NULL "
                           "ORDER BY block_id DESC LIMIT %s", (MAX_BLOCKS * 2,)).fetchall()


def blocks_for(conn: psycopg.Connection, tenant_id: str) -> list[dict]:
    """The blocks in force for one tenant (its own and MSP-wide), for its policy (the policy load's
    transaction, already scoped to the tenant)."""
    rows = conn.execute("SELECT block_id, kind, indicator, campaign_id FROM indicator_blocks WHERE removed_at IS NULL "
                        "AND (tenant_id IS NULL OR tenant_id = %s) ORDER BY block_id", (tenant_id,)).fetchall()
    return [{"block_id": b, "kind": k, "indicator": i, "campaign_id": c} for b, k, i, c in rows]


def campaign_indicators(conn: psycopg.Connection, campaign: dict) -> list[tuple[str, str]]:
    """What can be blocked of a campaign: its own indicator (unless it is the content digest) and
    the link domains, attachment hashes and sender domains every flagged copy shares."""
    from swordfish.store.campaigns import FLAGGED, members

    out: list[tuple[str, str]] = []
    if campaign["kind"] in KINDS:
        out.append((campaign["kind"], campaign["indicator"]))
    flagged = [c for c in members(conn, campaign) if c["verdict"] in FLAGGED]
    if not flagged:
        return out
    set_scope(conn, ALL_TENANTS)
    rows = conn.execute(
        "SELECT link_domains, attachment_sha256, sender_domain FROM verdict_traces t "
        "JOIN unnest(%s::text[], %s::text[]) AS k(tenant_id, message_id) USING (tenant_id, message_id)",
        ([c["tenant_id"] for c in flagged], [c["message_id"] for c in flagged])).fetchall()
    shared = {
        "link_domain": set.intersection(*(set(r[0] or []) for r in rows)) if rows else set(),
        "attachment_sha256": set.intersection(*(set(r[1] or []) for r in rows)) if rows else set(),
        "sender_domain": set.intersection(*({r[2]} if r[2] else set() for r in rows)) if rows else set(),
    }
    for kind in KINDS:
        for value in sorted(shared[kind]):
            if (kind, value) not in out:
                out.append((kind, value))
    return out
